"""Campaign import, DNC and campaign commands with bad input: a clear error naming the field
or the line, a non-zero exit from the CLI, and nothing half-stored. Both databases."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from harness.stack import VOICE_URL, dialer
from worker.api import create_campaign, export_rows
from worker.store.models import Campaign, Job
from worker.wiring import default_context

pytestmark = pytest.mark.integration


def counts() -> tuple[int, int]:
    with default_context().database.session() as session:
        return (session.scalar(select(func.count()).select_from(Campaign)) or 0,
                session.scalar(select(func.count()).select_from(Job)) or 0)


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


GOOD = "to,name,timezone,plan\n+14155556001,Ann,,gold\n+14155556002,Bob,Europe/Paris,basic\n"


def test_invalid_rows_are_reported_by_line_and_the_rest_imported(producer_env, tmp_path):
    path = write(tmp_path / "mixed.csv", GOOD + "12345,Bad,,x\n+14155556003,Tz,Mars/Base,x\n"
                 "+14155556001,Again,,x\n")
    result = create_campaign("mixed", contacts=path, url=VOICE_URL)
    assert (result.rows, result.imported, result.duplicates) == (5, 2, 1)
    assert [line for line, _ in result.invalid] == [4, 5]
    assert result.invalid[0][1].startswith("to:")
    assert result.invalid[1][1].startswith("timezone:")
    rows = {r["to"]: r for r in export_rows(result.campaign_id)}
    assert rows["+14155556001"]["contact.name"] == "Ann"
    assert rows["+14155556001"]["contact.plan"] == "gold"
    assert counts() == (1, 2)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"number,name\n+14155556001,Ann\n", "no 'to' column"),
    (b"to\n+1415555\xff6001\n", "not UTF-8"),
])
def test_unusable_files_store_nothing(producer_env, tmp_path, content, message):
    with pytest.raises(ValueError, match=message):
        create_campaign("bad", contacts=write(tmp_path / "f.csv", content), url=VOICE_URL)
    assert counts() == (0, 0)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"window": "25:00-08:00"}, "window:"),
    ({"window": "20:00-08:00"}, "window:"),
    ({"days": "funday"}, "days:"),
    ({"timezone": "Nowhere/Else"}, "timezone:"),
    ({"weight": 0}, "weight:"),
    ({"url": None}, "url/twiml/application_sid:"),
    ({"max_attempts": 0}, "max_attempts:"),
    ({"retry_on": ["completed"]}, "retry_on:"),
])
def test_bad_arguments_name_the_field_and_store_nothing(producer_env, tmp_path, kwargs, field):
    arguments = {"url": VOICE_URL, **kwargs}
    with pytest.raises(ValueError) as raised:
        create_campaign("bad", contacts=write(tmp_path / "good.csv", GOOD), **arguments)
    assert str(raised.value).startswith(field)
    assert counts() == (0, 0)


def test_strict_refuses_the_whole_file(producer_env, tmp_path):
    path = write(tmp_path / "strict.csv", GOOD + "12345,Bad,,x\n")
    with pytest.raises(ValueError, match="line 4"):
        create_campaign("strict", contacts=path, url=VOICE_URL, strict=True)
    assert counts() == (0, 0)


@pytest.mark.parametrize("action", ["pause", "resume", "cancel", "status", "export"])
def test_unknown_campaign_is_a_clear_error(producer_env, action):
    result = dialer(producer_env, "campaign", action, "nope")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "campaign_id: no campaign 'nope'" in result.stderr


def test_cli_create_status_export_and_dnc(producer_env, tmp_path):
    path = write(tmp_path / "c.csv", GOOD + "12345,Bad,,x\n")
    assert dialer(producer_env, "dnc", "add", "+14155556002").returncode == 0
    created = dialer(producer_env, "campaign", "create", "--name", "cli", "--url", VOICE_URL,
                     "--window", "09:00-20:00", "--days", "mon-fri", "--retry-delays", "60,600",
                     "--json", str(path))
    assert created.returncode == 0, created.stderr
    summary = json.loads(created.stdout)
    assert (summary["imported"], summary["do_not_call"]) == (1, 1)
    assert summary["invalid"] == [{"line": 4, "reason": "to: '12345' is not a phone number "
                                   "in international format (+country...)"}]
    status = json.loads(dialer(producer_env, "campaign", "status", summary["campaign_id"],
                               "--json").stdout)
    assert status["by_state"] == {"scheduled": 1}
    assert "09:00-20:00 mon,tue,wed,thu,fri" in status["window"]
    exported = dialer(producer_env, "campaign", "export", summary["campaign_id"])
    [row] = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert (row["to"], row["state"], row["contact.plan"]) == ("+14155556001", "scheduled", "gold")
    listed = json.loads(dialer(producer_env, "campaign", "list", "--json").stdout)
    assert [c["id"] for c in listed] == [summary["campaign_id"]]
    assert json.loads(dialer(producer_env, "dnc", "list", "--json").stdout) == ["+14155556002"]
    dnc_file = write(tmp_path / "dnc.csv", "number\n+14155556003\n+14155556004\n")
    assert dialer(producer_env, "dnc", "import", str(dnc_file)).stdout.strip() == "2 added"
    assert dialer(producer_env, "dnc", "remove", "+14155556003").stdout.strip() == "1 removed"
    bad = dialer(producer_env, "dnc", "add", "not-a-number")
    assert bad.returncode != 0 and "number:" in bad.stderr and "Traceback" not in bad.stderr
    bad_window = dialer(producer_env, "campaign", "create", "--name", "x", "--url", VOICE_URL,
                        "--window", "25:00-08:00", str(path))
    assert bad_window.returncode != 0 and "window:" in bad_window.stderr
    assert counts() == (1, 1)
