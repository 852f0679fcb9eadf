"""`dialer`: enqueue and inspect calls, download their recordings, run campaigns, keep the
do-not-call list, erase a number, set the account's pace, migrate the database, manage
API keys and serve the HTTP API, run the demo and the simulator. One module per command
group.

Errors are one line on stderr and a non-zero exit, never a traceback (`errors`).
"""

from __future__ import annotations

import click

from simulator.cli import main as simulator_main
from worker.cli.api_keys import api_key, serve_api
from worker.cli.calls import call, job, jobs
from worker.cli.campaigns import campaign
from worker.cli.database import db
from worker.cli.dnc import dnc
from worker.cli.erasure import erase
from worker.cli.notifications import notifications
from worker.cli.pace import pace
from worker.cli.recordings import recording
from worker.demo.command import demo


@click.group()
def main() -> None:
    """Queue-driven outbound dialer for Twilio."""


for command in (call, job, jobs, db, campaign, dnc, erase, notifications, pace, recording,
                api_key, serve_api, demo):
    main.add_command(command)
main.add_command(simulator_main, "simulator")
