"""The fast campaign import keeps the slow one's answers: numbers checked (in one process or
several), time zones as phonenumbers gives them, and CSV rows as csv.DictReader reads them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import phonenumbers
import pytest
from phonenumbers import timezone as number_zones
from sqlalchemy import func, select

from worker.domain.validation import recipient, recipients
from worker.engine.context import Context
from worker.producer import campaigns
from worker.producer.dnc import numbers_in_csv
from worker.producer.jobs import get_jobs
from worker.store.models import Campaign, Job


def example_numbers() -> list[str]:
    """phonenumbers' example number of every type in every region (multi-zone ones too)."""
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(12):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.append(phonenumbers.format_number(number,
                                                        phonenumbers.PhoneNumberFormat.E164))
    return sorted(set(found))


def test_zones_are_phonenumbers_own_for_numbers_of_every_region_and_type():
    numbers = example_numbers()
    assert len(numbers) > 900
    several = 0
    for text in numbers:
        parsed = phonenumbers.parse(text, None)
        if not phonenumbers.is_valid_number(parsed):
            continue
        expected = tuple(z for z in number_zones.time_zones_for_number(parsed)
                         if z != number_zones.UNKNOWN_TIMEZONE) or ("Etc/UTC",)
        assert recipient(text, None, "Etc/UTC") == (text, expected)
        several += len(expected) > 1
    assert several > 20  # US toll-free, Mongolia, Russia, Brazil, ...


MIXED = [("+14155556001", None), (" +1 415 555 6002 ", None), ("+14155556003", "Europe/Paris"),
         ("+14155556004", "Mars/Base"), ("12345", None), ("+1415555", None), ("", None),
         ("sip:alice@example.com", None), ("client:bob", "Asia/Tokyo"), (None, None),
         ("+97611234567", None), ("+18002345678", None), ("+442071838750", None)]


def test_recipients_answer_each_row_or_give_its_error():
    checked = recipients(MIXED, "UTC")
    for (to, row_zone), outcome in zip(MIXED, checked, strict=True):
        try:
            assert outcome == recipient(to, row_zone, "UTC")
        except ValueError as exc:
            assert outcome == str(exc)
    assert checked[1] == ("+14155556002", ("America/Los_Angeles",))
    assert checked[3].startswith("timezone:") and checked[4].startswith("to:")


def test_several_processes_check_in_file_order(monkeypatch):
    pairs = MIXED * 40
    monkeypatch.setattr(campaigns, "CHECK_CHUNK", 7)
    serial = list(campaigns._checked(pairs, "UTC", None))
    monkeypatch.setattr(campaigns, "PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(campaigns.os, "cpu_count", lambda: 2)
    advanced: list[int] = []
    assert list(campaigns._checked(pairs, "UTC", advanced.append)) == serial
    assert sum(advanced) == len(pairs) and len(advanced) == -(-len(pairs) // 7)


CSV_CASES = [
    "to,name\n+14155556001,Ann\n",
    "\ufeffTo , Name,Plan\n+14155556001, Ann ,gold\n\n+14155556002,Bob\n",  # BOM, blank, short
    "to,name\n+14155556001,Ann,extra,more\n+14155556002\n",  # long and short rows
    'to,note\n+14155556001,"two\nlines"\n+14155556002,"x"\n',  # line numbers after a newline
    "to,a,a\n+14155556001,1,2\n+14155556002,3\n",  # repeated column names
    "to,name\n \n+14155556001,Ann\n",  # a line of spaces is a row
]


@pytest.mark.parametrize("text", CSV_CASES)
def test_contacts_are_read_as_dictreader_reads_them(tmp_path: Path, text: str):
    path = tmp_path / "c.csv"
    path.write_text(text)
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    reader.fieldnames = [c.strip().lower() for c in reader.fieldnames or []]
    expected = [(reader.line_num, {k: (v or "").strip() for k, v in row.items()
                                   if k is not None}) for row in reader]
    assert list(campaigns.read_contacts(path)) == expected


# --- call options per row -----------------------------------------------------------------

def test_a_row_without_its_own_options_takes_the_campaigns() -> None:
    assert campaigns.row_call_options({"to": "+14155550123", "send_digits": " "},
                                      {"timeout": 20}) is None


def test_a_row_without_any_option_column_takes_the_campaigns() -> None:
    assert campaigns.row_call_options({"to": "+14155550123", "plan": "gold"},
                                      {"timeout": 20}) is None
    assert campaigns.row_call_options({"timeout": 45}, {"timeout": 20}) == {"timeout": 45}


def test_a_rows_options_override_the_campaigns_and_are_checked_together() -> None:
    row = {"to": "+14155550123", "send_digits": "ww123#", "timeout": " 45 ",
           "machine_detection": "Enable"}
    assert campaigns.row_call_options(row, {"timeout": 20, "record": True}) == {
        "timeout": 45, "record": True, "send_digits": "ww123#", "machine_detection": "Enable"}


@pytest.mark.parametrize(("row", "field"), [
    ({"timeout": "ten"}, "timeout:"), ({"timeout": "700"}, "timeout:"),
    ({"time_limit": "-5"}, "time_limit:"), ({"time_limit": "²"}, "time_limit:"),
    ({"send_digits": "call me"}, "send_digits:"),
    ({"machine_detection": "maybe"}, "machine_detection:"),
])
def test_a_bad_row_option_names_its_column(row: dict[str, str], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}"):
        campaigns.row_call_options(row, {})


def test_rows_are_stored_with_their_own_options_and_the_application(
        engine_ctx: Context) -> None:
    application_sid = "AP" + "cd" * 16
    result = campaigns.create_campaign(
        engine_ctx, "extensions", application_sid=application_sid,
        call_options={"timeout": 30}, contacts=[
            {"to": "+14155550123", "send_digits": "ww101#", "floor": "3"},
            {"to": "+14155550124"},
            {"to": "+14155550125", "send_digits": "call me"}])

    assert (result.imported, result.invalid) == (2, [(4, result.invalid[0][1])])
    assert result.invalid[0][1].startswith("send_digits:")
    jobs = {job["to"]: job for job in campaigns.export_rows(engine_ctx, result.campaign_id)}
    stored = {job.to: job for job in get_jobs(engine_ctx, [j["job_id"] for j in jobs.values()])
              .values()}
    assert stored["+14155550123"].call_options == {"timeout": 30, "send_digits": "ww101#"}
    assert stored["+14155550123"].metadata_ == {"floor": "3"}
    assert stored["+14155550124"].call_options == {"timeout": 30}
    assert {job.application_sid for job in stored.values()} == {application_sid}
    assert {job.url for job in stored.values()} == {None}


# --- files the csv module refuses -------------------------------------------------------

def test_a_cell_over_the_csv_field_limit_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("to,note\n+14155550123,ok\n+14155550124," + "x" * 131_073 + "\n")

    with pytest.raises(ValueError, match=rf"^{path}: line 3: not a CSV row"):
        list(campaigns.read_contacts(path))


def test_a_do_not_call_list_the_csv_module_refuses_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^body: line 2: not a CSV row"):
        numbers_in_csv("number\n" + "1" * 131_073 + "\n", "body")
    assert numbers_in_csv("number\n+14155550123\n\n+14155550124\n", "body") == [
        "+14155550123", "+14155550124"]


# --- jobs stored while the next rows are checked -----------------------------------------

# Valid, invalid, repeated, own options, own zone: every way a row can go.
ROWS = [{"to": f"+1415555{n:04d}", "n": str(n)} for n in range(60)] + [
    {"to": "+14155550001", "n": "repeat"}, {"to": "12345"}, {"to": "+14155550200", "timeout": "x"},
    {"to": "+14155550201", "timeout": "45"}, {"to": "+14155550202", "timezone": "Asia/Tokyo"}]


def stored(ctx: Context, campaign_id: str) -> list[tuple[object, ...]]:
    with ctx.database.session() as session:
        return [tuple(row) for row in session.execute(
            select(Job.to, Job.metadata_, Job.timezones, Job.call_options, Job.status)
            .where(Job.campaign_id == campaign_id).order_by(Job.to))]


def test_jobs_checked_in_several_processes_are_stored_as_in_one(
        engine_ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    one = campaigns.create_campaign(engine_ctx, "one", contacts=ROWS, url="https://x.example/t")
    monkeypatch.setattr(campaigns, "CHECK_CHUNK", 7)
    monkeypatch.setattr(campaigns, "PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(campaigns.os, "cpu_count", lambda: 2)
    several = campaigns.create_campaign(engine_ctx, "several", contacts=ROWS,
                                        url="https://x.example/t")

    assert (one.imported, one.duplicates, len(one.invalid)) == (62, 1, 2)
    assert {**several.to_json(), "campaign_id": None} == {**one.to_json(), "campaign_id": None}
    assert one.campaign_id and several.campaign_id
    assert stored(engine_ctx, several.campaign_id) == stored(engine_ctx, one.campaign_id)
    assert len(stored(engine_ctx, one.campaign_id)) == 62
    with engine_ctx.database.session() as session:
        campaign = session.get(Campaign, several.campaign_id)
        assert campaign is not None and campaign.status == "active"
        assert campaign.import_summary == {k: v for k, v in several.to_json().items()
                                           if k != "invalid"}


def test_strict_stores_nothing_when_a_late_row_is_invalid(
        engine_ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(campaigns, "CHECK_CHUNK", 7)
    monkeypatch.setattr(campaigns, "PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(campaigns.os, "cpu_count", lambda: 2)
    with pytest.raises(ValueError, match=r"^contacts: 2 invalid rows, nothing imported "
                                         r"\(first: line 63: to: "):
        campaigns.create_campaign(engine_ctx, "strict", contacts=ROWS,
                                  url="https://x.example/t", strict=True)
    with engine_ctx.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_a_campaign_with_no_valid_row_is_stored_done(engine_ctx: Context) -> None:
    result = campaigns.create_campaign(engine_ctx, "none", contacts=[{"to": "12345"}],
                                       url="https://x.example/t")
    assert result.campaign_id is not None and result.imported == 0
    with engine_ctx.database.session() as session:
        campaign = session.get(Campaign, result.campaign_id)
        assert campaign is not None and campaign.status == "done"
        assert campaign.import_summary == {"campaign_id": result.campaign_id, "rows": 1,
                                           "imported": 0, "duplicates": 0, "do_not_call": 0}
