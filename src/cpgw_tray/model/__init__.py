"""The pure model: states and their classification, IBKR's clock, the person policy,
words for people and the gateway's text made safe. No I/O, threads or toolkit here.
"""
