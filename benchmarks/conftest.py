"""pytest-benchmark suite: pymigjob against the pure twin and the floor.

Not part of the plain ``pytest`` run (``testpaths = tests``); run it with

    pytest benchmarks                      # the default, steadier length
    pytest benchmarks --bench-quick        # CI's short, non-gating pass
    pytest benchmarks --benchmark-json=bench.json && python benchmarks/check_ratios.py bench.json

Each test measures pymigjob with ``benchmark.pedantic`` and, before each of
its rounds (pedantic's untimed ``setup``), one round of every baseline, so the
variants are interleaved and share the machine's state.  The numbers, the
ratios, the issue's targets and the load average go into
``benchmark.extra_info`` (and so into ``--benchmark-json``), and the tables
are printed at the end of the session.  Targets are reported, not asserted;
only correctness (no disallowed job granted, nothing leaked) fails a test.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List

import pytest

from pymigjob.cli import bench


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pymigjob-bench")
    group.addoption("--bench-quick", action="store_true", default=False,
                    help="short rounds (CI): the benchmarks run once so they cannot "
                         "rot; also PYMIGJOB_BENCH_QUICK=1")
    group.addoption("--bench-scale-domains", type=int, default=None,
                    help="domains in the scale benchmark (default 100000)")


class BenchSettings:
    def __init__(self, quick: bool, scale_n: int | None) -> None:
        self.quick = quick
        base = bench.QUICK if quick else bench.FULL
        self.round_time = base.round_time
        self.micro_rounds = base.micro_rounds
        self.contention_duration = base.contention_duration
        self.contention_rounds = base.contention_rounds
        self.hold = base.hold
        self.mix_duration = base.mix_duration
        self.mix_rounds = base.mix_rounds
        self.scale_n = scale_n or base.scale_n


@pytest.fixture(scope="session")
def settings(request: pytest.FixtureRequest) -> BenchSettings:
    quick = (request.config.getoption("--bench-quick")
             or os.environ.get("PYMIGJOB_BENCH_QUICK", "") not in ("", "0"))
    return BenchSettings(quick, request.config.getoption("--bench-scale-domains"))


_RESULTS: Dict[str, List[Dict[str, Any]]] = {"micro": [], "release": [], "contention": [],
                                             "mix": [], "scale": []}


@pytest.fixture
def record(benchmark: Any) -> Any:
    """record(section, result): into extra_info (for the JSON) and the end table."""

    def _record(section: str, result: Dict[str, Any]) -> None:
        result = bench.json_safe(result)
        benchmark.extra_info.update(result)
        benchmark.extra_info["section"] = section
        _RESULTS[section].append(result)

    return _record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not any(_RESULTS.values()):
        return
    tr = terminalreporter
    tr.section("pymigjob: ratios against the pure twin and the floor")

    class _W:
        def write(self, s: str) -> None:
            tr.write(s)

        def flush(self) -> None:
            pass

    out = _W()
    pure, why = bench.load_pure()
    if pure is None:
        tr.write_line(f"note: {why}")
    if _RESULTS["micro"]:
        bench.print_micro(_RESULTS["micro"], out)
        tr.write_line("")
    for r in _RESULTS["release"]:
        tr.write_line(f"{r['what']}: {r['ratios']} (median ns/op, CPU: {r['ns_per_op']})")
    if _RESULTS["contention"]:
        bench.print_contention(sorted(_RESULTS["contention"], key=lambda r: r["threads"]), out)
        tr.write_line("")
    for mix in _RESULTS["mix"]:
        bench.print_mix(mix, out)
        tr.write_line("")
    for sc in _RESULTS["scale"]:
        bench.print_scale(sc, out)
        tr.write_line("")
    checks = [c for rs in _RESULTS.values() for r in rs for c in r.get("checks", [])]
    if checks:
        bench.print_checks(checks, out)
    tr.write_line(f"load average now: {bench.loadavg()}")
