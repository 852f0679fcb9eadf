"""The same-run baselines' ratios: figure over baseline, and none where either is missing."""

from __future__ import annotations

import math

import pytest

from bench.common import ratio, spread
from bench.enqueue import table_rows


def test_a_ratio_is_the_figure_over_the_baseline_rounded() -> None:
    assert ratio(300.0, 900.0) == 0.333
    assert ratio(2.5, 0.4, 2) == 6.25


@pytest.mark.parametrize(("measured", "baseline"), [
    (None, 900.0),  # the phase measured nothing
    (300.0, None),  # no baseline phase
    (300.0, 0.0),  # the baseline finished nothing
    (math.nan, 900.0),  # a percentile of no latency
    (300.0, math.nan),
])
def test_no_ratio_without_both_figures(measured: float | None, baseline: float | None) -> None:
    assert ratio(measured, baseline) is None


def test_the_enqueue_table_shows_the_baseline_and_ratio_beside_each_figure() -> None:
    figures = {"jobs_per_s": spread([500.0, 520.0]), "p50_ms": spread([1.0]),
               "p99_ms": spread([9.0]), "cpu_ms_per_job": spread([0.9])}
    without = table_rows("sqlite", 1, figures)
    assert [len(row) for row in without] == [3, 3, 3]
    figures |= {"baseline_p50_ms": spread([0.4]), "baseline_p99_ms": spread([8.0]),
                "vs_baseline": {"baseline_jobs_per_s": spread([1000.0]),
                                "baseline_cpu_ms_per_job": spread([0.45]),
                                "jobs_per_s_ratio": spread([0.5, 0.52]),
                                "cpu_per_job_ratio": spread([2.0])}}
    jobs, latency, cpu = table_rows("sqlite", 1, figures)
    assert jobs[3:] == ["1000", "0.51 (0.50-0.52)"]
    assert latency[3] == "0.40 / 8.00"
    assert cpu[3:] == ["0.450", "2.0"]
