"""The gateway's Java process: its folder, launching it, knowing which processes are a
gateway and whose, and its output log.
"""
