"""The layers of docs/ARCHITECTURE.md hold: every import points down, and no package's
modules import each other in a circle (the contracts are in pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.cli import EXIT_STATUS_SUCCESS, lint_imports

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_every_import_contract_holds(capsys: pytest.CaptureFixture[str]) -> None:
    status = lint_imports(str(PYPROJECT), no_cache=True, no_logo=True)
    assert status == EXIT_STATUS_SUCCESS, capsys.readouterr().out
