"""What a campaign export writes: the dialer's own columns, the contact's columns under a
prefix so they can never take an own column's place, and cells a spreadsheet shows as text
instead of running them as formulas."""

from __future__ import annotations

import re

OWN_COLUMNS = ("to", "state", "attempts", "last_outcome", "talk_time_s", "answered_by",
               "recording_url", "recording_duration", "job_id")
# A contact's `state` column exports as `contact.state`, beside the job's own `state`.
CONTACT_PREFIX = "contact."
# A cell starting with one of these is a formula to a spreadsheet (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain signed number (-5, -2.5, +14155550123) is read as a number, which runs nothing.
_PLAIN_NUMBER = re.compile(r"[+-][0-9]+(\.[0-9]+)?")


def contact_column(name: str) -> str:
    return CONTACT_PREFIX + name


def safe_cell(value: object) -> object:
    """The value as it is, or text starting with a single quote when a spreadsheet would read
    it as a formula (OWASP's advice: the quote makes the cell literal text). A plain signed
    number stays readable."""
    if (isinstance(value, str) and value.startswith(FORMULA_STARTS)
            and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value
