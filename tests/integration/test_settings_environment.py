"""Settings as a process reads them: a light import, and the `.env` file of the working
directory. In subprocesses, so nothing leaks into the test process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.stack import clean_environ

REPO = Path(__file__).resolve().parents[2]


def python_env() -> dict[str, str]:
    """No dialer settings, and the repository importable from any working directory."""
    return clean_environ() | {"PYTHONPATH": str(REPO)}


def test_importing_the_settings_pulls_in_neither_sqlalchemy_nor_celery():
    code = ("import worker.settings, sys; "
            "bad = sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'celery'))); "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=python_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def _get_settings_in(cwd: Path, env: dict[str, str], *, as_script: bool) -> str:
    code = "from worker.settings import get_settings; print(get_settings().calls_per_second)"
    if as_script:  # as `celery`, `gunicorn` and the `dialer` entry point run: __main__ is a file
        script = cwd / "show_settings.py"
        script.write_text(code + "\n")
        args = [sys.executable, str(script)]
    else:
        args = [sys.executable, "-c", code]
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_dotenv_file_in_the_working_directory_fills_what_is_unset(tmp_path):
    (tmp_path / ".env").write_text("DIALER_CALLS_PER_SECOND=7\n")
    assert _get_settings_in(tmp_path, python_env(), as_script=False) == "7.0"
    # The same for a program started from a file, as the worker, beat and webhook are.
    assert _get_settings_in(tmp_path, python_env(), as_script=True) == "7.0"


def test_the_environment_wins_over_the_dotenv_file(tmp_path):
    (tmp_path / ".env").write_text("DIALER_CALLS_PER_SECOND=7\n")
    env = python_env() | {"DIALER_CALLS_PER_SECOND": "3"}
    assert _get_settings_in(tmp_path, env, as_script=False) == "3.0"
