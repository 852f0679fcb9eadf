"""bench/ceiling.py prices a call in no-op Celery tasks, and refuses a baseline of no task."""

from __future__ import annotations

import pytest

from bench.ceiling import in_noop_tasks, main


def test_a_call_is_priced_in_noop_tasks_of_cpu() -> None:
    assert in_noop_tasks({"cpu_ms_per_call_ours": 60.0}, {"cpu_ms_per_task": 2.5}) == 24.0


@pytest.mark.parametrize(("step", "base"), [
    ({"cpu_ms_per_call_ours": None}, {"cpu_ms_per_task": 2.5}),  # no call finished
    ({"cpu_ms_per_call_ours": 60.0}, {"cpu_ms_per_task": None}),  # no no-op task finished
    ({"cpu_ms_per_call_ours": 60.0}, None),  # --no-baseline
])
def test_no_price_without_both_figures(step: dict[str, float | None],
                                       base: dict[str, float | None] | None) -> None:
    assert in_noop_tasks(step, base) is None


def test_baseline_tasks_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--baseline-tasks", "0"])
    assert exited.value.code == 2
    assert "--baseline-tasks >= 1" in capsys.readouterr().err
