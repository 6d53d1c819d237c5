"""begin_job+end_job today against pymigjob 0.1 in the same run: two worker
processes of the same shape, one per version, their rounds interleaved; each
side's begin+end over two no-op calls into its own C core, today's ratio
divided by 0.1's (benchmarks/release_0_1.py says how 0.1 is built and run)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Dict, List

import pytest

from pymigjob.cli import bench
from pymigjob.cli.bench.common import median
from pymigjob.cli.bench.micro import MICRO_CASES, _Variant


def _load_sibling(name: str):
    """benchmarks/ is no package (pytest runs it with --import-mode=importlib)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


release_0_1 = _load_sibling("release_0_1")
CASE = "begin_end"
TARGET = "begin_end/release_0_1"


def test_begin_end_vs_0_1(benchmark, record, settings, tmp_path):
    benchmark.group = "release"
    what, stmt = MICRO_CASES[CASE]
    src, why = release_0_1.build(tmp_path)
    if src is None:
        # reported as n/a by check_ratios, not as a missing result
        record("release", {"case": CASE, "what": why, "ratios": {}, "ns_per_op": {},
                           "checks": [bench.TARGETS[TARGET].check(None)]})
        pytest.skip(why)
    # K per round from an in-process calibration of today's statement and floor
    import pymigjob
    from pymigjob._c.binding import noop

    glb = {"dom": pymigjob.Driver().add_domain("k"), "J": pymigjob.Job.MODIFY, "noop": noop}
    k_subject = _Variant("s", stmt, glb)
    k_floor = _Variant("f", "noop(); noop()", glb)
    for v in (k_subject, k_floor):
        v.calibrate(settings.round_time)
    workers = {"today": release_0_1.Worker("today", stmt),
               "0.1": release_0_1.Worker("0.1", stmt, src)}
    times: Dict[str, List[List[float]]] = {name: [] for name in workers}

    def round_of(name: str) -> None:
        times[name].append(workers[name].round(k_subject.k, k_floor.k))

    try:
        round_of("0.1"), round_of("today")          # warm-up, dropped
        times["0.1"].clear(), times["today"].clear()
        benchmark.pedantic(round_of, args=("today",), setup=lambda: round_of("0.1"),
                           rounds=settings.micro_rounds, iterations=1, warmup_rounds=0)
    finally:
        for w in workers.values():
            w.close()
    med = {name: [median([r[i] for r in rs]) for i in (0, 1)] for name, rs in times.items()}
    over_floor = {name: m[0] / m[1] for name, m in med.items()}
    value = over_floor["today"] / over_floor["0.1"]
    res = {
        "case": CASE, "what": f"{what}: today / 0.1 ({release_0_1.RELEASE_0_1})",
        "ns_per_op": {f"{name} {part}": round(m[i] * 1e9, 1)
                      for name, m in med.items() for i, part in enumerate((CASE, "noop2"))},
        "ratios": {"today/noop2": round(over_floor["today"], 3),
                   "0.1/noop2": round(over_floor["0.1"], 3),
                   "today/0.1": round(value, 3),
                   "today/0.1 (no floor)": round(med["today"][0] / med["0.1"][0], 3)},
        "rounds": len(times["today"]),
        "checks": [bench.TARGETS[TARGET].check(value)],
    }
    record("release", res)
    assert res["rounds"] == settings.micro_rounds
