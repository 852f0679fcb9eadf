"""The producer side: enqueue, look up and cancel calls, campaigns, the do-not-call list.

Every function takes the `Context` first; `worker.api` binds them to the one built from
the environment, which is what `from worker import ...` gives.
"""
