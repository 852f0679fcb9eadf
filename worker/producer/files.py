"""Reading the CSV files operators hand the dialer (contacts, do-not-call lists)."""

from __future__ import annotations

from pathlib import Path


def read_text(path: Path) -> str:
    """The file as text (UTF-8, a BOM allowed); errors name the file and what is wrong."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
