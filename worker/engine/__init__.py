"""The dialer's engine: claim, pace, create, status handling, dispatch, reconcile.

Each function takes a `Context` holding what it talks to (settings, database, broker, Twilio,
pacer), so it runs the same under Celery and in-process with stand-ins.
"""
