"""Looking after the session: the poller's schedule, session care (keep-alive,
reauthentication), IBKR's restart windows applied to checks, calling the person.
"""
