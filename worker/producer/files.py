"""Reading the CSV files operators hand the dialer (contacts, do-not-call lists)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
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


def csv_rows(text: str, source: object) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each row; a row the csv module refuses (a cell over its field
    size limit of 131,072 characters, a stray NUL) is a ValueError naming the source and
    the line, not a csv.Error from deep inside an import."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:
        raise ValueError(f"{source}: line {reader.line_num}: not a CSV row the dialer can read "
                         f"({exc})") from None
