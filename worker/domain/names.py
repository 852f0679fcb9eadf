"""Names shared across processes, defined once: Celery task and queue names, the webhook's
paths, and the status and recording events the dialer asks Twilio for.

The webhook publishes to the events queue by name, without importing the tasks.
"""

from __future__ import annotations

PLACE_CALL_TASK = "dialer.place_call"
HANDLE_STATUS_TASK = "dialer.handle_status"
HANDLE_RECORDING_TASK = "dialer.handle_recording"
HANDLE_AMD_TASK = "dialer.handle_amd"
DISPATCH_DUE_TASK = "dialer.dispatch_due"
RECONCILE_TASK = "dialer.reconcile"
DELIVER_NOTIFICATION_TASK = "dialer.deliver_notification"
RELAY_NOTIFICATIONS_TASK = "dialer.relay_notifications"
APPLY_RETENTION_TASK = "dialer.apply_retention"

DIAL_QUEUE = "dial"
EVENTS_QUEUE = "events"
DEFAULT_QUEUE = "default"
# Result notifications wait on slow receivers: a queue of their own never delays dialing.
NOTIFY_QUEUE = "notify"
QUEUES = (DIAL_QUEUE, EVENTS_QUEUE, DEFAULT_QUEUE, NOTIFY_QUEUE)

STATUS_CALLBACK_PATH = "/twilio/status"
RECORDING_CALLBACK_PATH = "/twilio/recording"
AMD_CALLBACK_PATH = "/twilio/amd"
# Every status event Twilio can send, in the order a call reaches them.
TWILIO_STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
# What the dialer asks for unless DIALER_STATUS_CALLBACK_EVENTS says otherwise: `answered`
# (the call is live: a cancel hangs it up) and `completed`, which Twilio also sends for
# busy, no-answer, failed and canceled calls, with CallStatus saying which. Each event is a
# signed request, a task and a transaction; `initiated` and `ringing` tell the dialer
# nothing it acts on.
STATUS_CALLBACK_EVENTS = ("answered", "completed")
# The event the dialer cannot do without: its callback ends an attempt and decides the job.
REQUIRED_STATUS_CALLBACK_EVENT = "completed"
# Twilio's default is `completed` alone; `in-progress` shows a recording while the call lasts
# and `absent` tells a silent recording from a lost callback.
RECORDING_CALLBACK_EVENTS = ("in-progress", "completed", "absent")
