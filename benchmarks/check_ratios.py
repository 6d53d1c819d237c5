"""CI's ratio check: read a ``--benchmark-json`` file written by
``pytest benchmarks`` and hold each ratio recorded there (pymigjob against an
in-run baseline: two no-op cffi calls, the pure twin, one thread with no
lock) to its gate in ``pymigjob.cli.bench.TARGETS``.  A gate is the issue's
target with at least 25 % margin, or, for a target missed today, today's
worst measured ratio plus 25 % so that things cannot get worse unnoticed.  No absolute time
is checked anywhere.

    python benchmarks/check_ratios.py bench.json

Exit 0 when every gate holds, 1 when one fails, 2 when the file lacks
results it should have (a benchmark that rotted or was not run).  A ratio
against the pure twin is skipped (n/a) while ``pymigjob.pure`` is absent.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any, Dict, List

try:
    from pymigjob.cli.bench import TARGETS, print_checks
except Exception:  # a broken import is not a failed gate either: exit 2, no re-run
    import traceback

    traceback.print_exc()
    sys.exit(2)

#: every one of these must be present in the JSON (value may be None = n/a)
REQUIRED = set(TARGETS)
#: wait-time gates say nothing on an oversubscribed machine (a woken waiter
#: queues for a CPU): they are reported but not enforced when the 1-minute
#: load average around the benchmark exceeded this many runnable tasks per CPU
LATENCY_KEYS = ("fair64/",)
OVERLOAD_PER_CPU = 1.5


def _peak_load(load: Any) -> float:
    """The highest 1-minute load average recorded ({"before": [..], "after": [..]}
    or a plain [1, 5, 15] list)."""
    if isinstance(load, dict):
        seen = [la for la in (load.get("before"), load.get("after")) if la]
    elif isinstance(load, (list, tuple)) and load and isinstance(load[0], (int, float)):
        seen = [load]
    else:
        seen = []
    return max((float(la[0]) for la in seen), default=0.0)


def collect(data: Dict[str, Any]) -> List[Dict[str, Any]]:
    checks = []
    cpus = os.cpu_count() or 1
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        if not info.get("checks"):
            continue
        peak = _peak_load(info.get("loadavg"))
        for c in info.get("checks", []):
            t = TARGETS.get(c["key"])
            if t is None:
                continue
            checked = t.check(c["value"])  # re-judged with today's gates
            if c["key"].startswith(LATENCY_KEYS) and peak > OVERLOAD_PER_CPU * cpus:
                checked["overloaded"] = (f"load average {peak} on {cpus} CPUs: "
                                         "reported, not enforced")
            checks.append(checked)
    return checks


def correctness(data: Dict[str, Any]) -> List[str]:
    """The daemon mix's own invariants, in case the test's asserts were skipped."""
    bad = []
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        if info.get("section") != "mix":
            continue
        for name, run in info.get("runs", {}).items():
            if name != "nolock" and (run.get("violations") or run.get("leaks")):
                bad.append(f"daemon mix ({name}): violations={run.get('violations')} "
                           f"leaks={run.get('leaks')}")
    return bad


def main(argv: List[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        data = json.load(f)
    checks = collect(data)
    missing = REQUIRED - {c["key"] for c in checks}
    print_checks(checks)
    rc = 0
    if missing:
        print(f"\nmissing results for: {', '.join(sorted(missing))}", file=sys.stderr)
        rc = 2
    for c in checks:
        if "overloaded" in c:
            print(f"note: {c['what']}: {c['overloaded']}")
    failed = [c for c in checks if c["value"] is not None
              and not (isinstance(c["value"], float) and math.isnan(c["value"]))
              and not c["gate_ok"] and "overloaded" not in c]
    for c in failed:
        print(f"GATE FAILED: {c['what']}: {c['value']:.3f}, gate {c['op']} {c['gate']}",
              file=sys.stderr)
    for msg in correctness(data):
        print(f"FAILED: {msg}", file=sys.stderr)
        failed.append({})
    na = [c for c in checks if c["value"] is None]
    if na:
        print(f"\n{len(na)} ratio(s) n/a (pymigjob.pure absent): "
              + ", ".join(c["key"] for c in na))
    if failed:
        return 1
    if rc == 0:
        enforced = [c for c in checks if c["value"] is not None and "overloaded" not in c]
        print(f"\nall {len(enforced)} enforced ratio gate(s) hold")
    return rc


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception:  # a broken check is not a failed gate: no re-run, exit 2
        import traceback

        traceback.print_exc()
        sys.exit(2)
