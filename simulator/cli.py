"""`python -m simulator` and `dialer simulator`: run the simulator in the foreground."""

from __future__ import annotations

import json
import secrets
import signal
import threading
from pathlib import Path
from typing import Any

import click

from simulator.core import Simulator
from simulator.scenario import Scenario


def _load_scenario(path: Path | None) -> Scenario | None:
    if path is None:
        return None
    try:
        data: Any = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object with 'rules' and 'default'")
        return Scenario(data.get("rules") or {}, data.get("default", "answered"))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--scenario") from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="0 picks a free port.")
@click.option("--account-sid", envvar="TWILIO_ACCOUNT_SID",
              help="Default: $TWILIO_ACCOUNT_SID, else a made-up one (printed).")
@click.option("--auth-token", envvar="TWILIO_AUTH_TOKEN",
              help="Default: $TWILIO_AUTH_TOKEN, else a random one (printed).")
@click.option("--cps", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Calls per second the account dequeues.")
@click.option("--strict", is_flag=True, help="Answer 429 (20429) instead of queueing.")
@click.option("--scenario", "scenario_file", type=click.Path(path_type=Path, dir_okay=False),
              help='JSON: {"rules": {"+1415555*": ["busy", "answered"]}, "default": "answered"}')
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Multiplies every call duration (0.01: 100x faster).")
@click.option("--seed", type=int, default=None,
              help="Same seed, same SIDs and fault draws: for tests, never for a simulator "
                   "that restarts against the same database.")
def main(host: str, port: int, account_sid: str | None, auth_token: str | None, cps: float,
         strict: bool, scenario_file: Path | None, time_scale: float, seed: int | None) -> None:
    """Run a local stand-in for Twilio's voice API until Ctrl-C."""
    scenario = _load_scenario(scenario_file)
    account_sid = account_sid or "AC" + secrets.token_hex(16)
    token_given = bool(auth_token)
    auth_token = auth_token or secrets.token_hex(16)
    if not (account_sid.startswith("AC") and len(account_sid) == 34):
        raise click.BadParameter("must be AC followed by 32 characters",
                                 param_hint="--account-sid")
    sim = Simulator(account_sid, auth_token, cps=cps, strict=strict, time_scale=time_scale,
                    seed=seed, host=host, port=port)
    if scenario is not None:
        sim.engine.scenario = scenario
    try:
        sim.start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    click.echo(f"Twilio simulator on {sim.url}  (TWILIO_API_BASE_URL={sim.url})")
    click.echo(f"  account SID {account_sid}")
    click.echo("  auth token  " + ("from the environment or --auth-token" if token_given
                                   else auth_token))
    click.echo(f"  {cps:g} calls/s{' strict' if strict else ''}, time scale {time_scale:g}, "
               f"scenario {scenario_file or 'everyone answers'}; control API at {sim.url}/_sim/")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        click.echo("simulator stopped")
