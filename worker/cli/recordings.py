"""`dialer recording download`."""

from __future__ import annotations

from pathlib import Path

import click

from worker import api
from worker.cli.errors import friendly_errors


@click.group()
def recording() -> None:
    """A job's call recordings."""


@recording.command("download")
@click.argument("job_id")
@click.option("--attempt", type=click.IntRange(min=1),
              help="The attempt's number (default: the job's last attempt).")
@click.option("--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Where to write the WAV file (default: <recording sid>.wav).")
@friendly_errors
def download(job_id: str, attempt: int | None, output: Path | None) -> None:
    """Fetch a job's completed recording from Twilio as a WAV file."""
    media = api.recording_media(job_id, attempt)
    path = output or Path(f"{media.recording_sid}.wav")
    try:
        path.write_bytes(media.content)
    except OSError as exc:
        raise click.ClickException(f"--output: cannot write {path}: {exc.strerror}") from None
    click.echo(f"{path} ({len(media.content)} bytes, recording {media.recording_sid} of "
               f"attempt {media.attempt})")
