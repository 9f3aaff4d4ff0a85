"""Talking to the gateway's HTTP API: the transport (bounded in time, memory and CPU),
request pacing, and the endpoints the tray uses.
"""
