"""Logging helpers: phone numbers never appear whole in a log line."""

from __future__ import annotations


def mask(address: str | None) -> str:
    """'+14155550123' -> '***0123'; SIP and client addresses keep only their scheme."""
    if not address:
        return "-"
    if address.startswith(("sip:", "client:")):
        return address.split(":", 1)[0] + ":***"
    return "***" + address[-4:]
