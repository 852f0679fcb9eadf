"""The dialer's rules as pure code: statuses and the state machine, the retry policy,
calling windows, fair sharing of the pace, Twilio error classes, input validation.

Nothing here does I/O or reads settings; every other layer may import it.
"""
