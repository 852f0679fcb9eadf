"""Files the tests read, copied into the repository with their sources (README.md here)."""

from pathlib import Path

DATA = Path(__file__).resolve().parent
TWILIO_OPENAPI = DATA / "twilio-oai" / "twilio_api_v2010.json"
STATUS_CALLBACKS = DATA / "twilio_status_callbacks.json"
