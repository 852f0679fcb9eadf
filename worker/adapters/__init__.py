"""The outside world behind small classes: Twilio's Calls API, the Redis pacer, the Celery
broker. The engine sees them only through the protocols of `worker.engine.context`."""
