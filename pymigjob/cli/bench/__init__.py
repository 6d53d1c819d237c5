"""``python -m pymigjob bench``: pymigjob against its pure-Python twin and the floor.

Every measurement compares, in the same run, the C-backed library with

* the pure-Python twin (``pymigjob.pure``, the "careful Python author"
  baseline) when it is importable, and
* the floor: two no-op cffi calls (``lib.mj_noop()`` twice: what any two
  calls into the core cost at least) and a ``threading.Lock`` acquire+release.

Four workloads (the same code runs under pytest-benchmark in ``benchmarks/``):

1. *micro*: uncontended begin_job+end_job, ``with dom.job(...)``, the v3
   migration helper sequence and the phase/label conversions.  Each round
   runs long enough to be stable (>= 20 x ``sys.getswitchinterval()``), the
   variants are interleaved round by round, and medians are reported.
2. *contention*: 1/8/64/256 threads on one domain, each holding the job for
   a short sleep (the GIL released, as during a monitor call): throughput,
   p50/p99/max acquisition wait, per-thread fairness; against one thread
   sleeping back to back without any lock, a ``threading.Lock`` and a plain
   condition-variable job lock.
3. *mix*: a daemon -- many domains, a pool of workers, migrations running
   through their phases while queries, modifies, aborts and destroys arrive;
   every grant is checked against the async job's mask.
4. *scale*: 100 000 domains -- bytes per domain (tracemalloc for the Python
   side, the RSS delta for the total, each in a fresh process) and
   random-access throughput against 10 domains.

Ratios are what matter here; absolute times depend on the machine and its
load, so the load average is printed with the results.

One module per section (micro, contention, mix, scale), common.py (the
implementations, statistics, targets) and report.py (the tables); this one
runs them (run_all) and reads the command line (main).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .common import (
    TARGETS,
    Target,
    impl_by_name,
    json_safe,
    load_c,
    load_pure,
    loadavg,
    min_round_time,
    noop,
)
from .contention import ContentionBench
from .micro import MICRO_CASES, MicroBench
from .mix import MixBench, daemon_mix, mix_compare
from .report import print_checks, print_contention, print_micro, print_mix, print_scale
from .scale import scale_compare

#: what pytest-benchmark's suites (benchmarks/) and the tests use
__all__ = [
    "FULL", "MICRO_CASES", "QUICK", "TARGETS", "ContentionBench", "MicroBench", "MixBench",
    "Settings", "Target", "daemon_mix", "impl_by_name", "json_safe", "load_c", "load_pure",
    "loadavg", "main", "min_round_time", "mix_compare", "noop", "print_checks",
    "print_contention", "print_micro", "print_mix", "print_scale", "run_all", "scale_compare",
]

# ---------------------------------------------------------------------------
# the person's table


@dataclass
class Settings:
    round_time: float = 0.1
    micro_rounds: int = 5
    contention_duration: float = 0.3
    contention_rounds: int = 1
    threads: Tuple[int, ...] = (1, 8, 64, 256)
    hold: float = 0.0005
    mix_duration: float = 1.0
    mix_rounds: int = 1
    scale_n: int = 100_000
    sections: Tuple[str, ...] = ("micro", "contention", "mix", "scale")
    extra: Dict[str, Any] = field(default_factory=dict)


QUICK = Settings()
FULL = Settings(round_time=0.2, micro_rounds=11, contention_duration=1.0,
                contention_rounds=3, mix_duration=2.0, mix_rounds=3)


def run_all(s: Settings, out: Any = sys.stdout) -> Dict[str, Any]:
    pure, why = load_pure()
    res: Dict[str, Any] = {
        "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "switchinterval_s": sys.getswitchinterval(),
        "settings": asdict(s), "loadavg_start": loadavg(),
        "pure": "measured" if pure is not None else why,
    }
    checks: List[Dict[str, Any]] = []
    print(f"pymigjob bench: Python {res['python']}, {res['cpus']} CPUs, "
          f"switch interval {res['switchinterval_s'] * 1e3:g} ms, "
          f"load average {res['loadavg_start']}", file=out)
    if pure is None:
        print(f"note: {why}", file=out)
    if "micro" in s.sections:
        micro = []
        for key in MICRO_CASES:
            mb = MicroBench(key, s.round_time)
            micro.append(mb.run(s.micro_rounds))
        res["micro"] = micro
        checks += [c for r in micro for c in r["checks"]]
        print(f"\n({s.micro_rounds} rounds of >= {max(s.round_time, min_round_time()):g} s "
              "per variant, interleaved; medians of the thread's CPU time per op, so "
              "that other processes do not count)", file=out)
        print_micro(micro, out)
    if "contention" in s.sections:
        cont = []
        for n in s.threads:
            cb = ContentionBench(n, s.hold, s.contention_duration)
            try:
                cont.append(cb.run(s.contention_rounds))
            finally:
                cb.close()
        res["contention"] = cont
        checks += [c for r in cont for c in r["checks"]]
        print(f"\n({s.contention_rounds} round(s) of {s.contention_duration:g} s per variant; "
              "max/(n*hold): longest wait over n nominal holds; min/max done: "
              "per-thread fairness)", file=out)
        print_contention(cont, out)
    if "mix" in s.sections:
        mix = mix_compare(s.mix_duration, s.mix_rounds)
        res["mix"] = mix
        print("", file=out)
        print_mix(mix, out)
    if "scale" in s.sections:
        sc = scale_compare(s.scale_n, s.round_time)
        res["scale"] = sc
        checks += sc["checks"]
        print("", file=out)
        print_scale(sc, out)
    res["checks"] = checks
    res["loadavg_end"] = loadavg()
    if checks:
        print("", file=out)
        print_checks(checks, out)
    print(f"\nload average at the end: {res['loadavg_end']}", file=out)
    peak = max((la[0] for la in (res["loadavg_start"], res["loadavg_end"]) if la), default=0.0)
    if peak > 1.5 * (os.cpu_count() or 1):
        print(f"note: the machine was busy (load {peak} on {os.cpu_count()} CPUs): wait "
              "times and contention ratios are inflated; ns/op ratios, being "
              "interleaved, hold up better", file=out)
    return res


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pymigjob bench",
        description="Compare pymigjob with its pure-Python twin and the floor "
                    "(two no-op cffi calls, threading.Lock). Quick by default "
                    "(well under a minute); --full for a longer, steadier run.")
    def default(field: str, scale: float = 1.0) -> str:
        """The default of a setting, quick and (where it differs) --full."""
        quick, full = getattr(QUICK, field), getattr(FULL, field)
        show = (lambda v: ",".join(map(str, v)) if isinstance(v, tuple)
                else format(v * scale, "g"))
        if quick == full:
            return f"(default: {show(quick)})"
        return f"(default: {show(quick)}; with --full: {show(full)})"

    p.add_argument("--full", action="store_true",
                   help="longer rounds and more of them (a few minutes) "
                        "(default: off, the quick run)")
    p.add_argument("--only", default="",
                   help="comma-separated sections: micro,contention,mix,scale "
                        "(default: all of them)")
    p.add_argument("--rounds", type=int,
                   help=f"micro rounds per variant {default('micro_rounds')}")
    p.add_argument("--round-time", type=float,
                   help="seconds per micro round, raised to at least 20 x the GIL switch "
                        f"interval {default('round_time')}")
    p.add_argument("--duration", type=float,
                   help=f"seconds per contention round {default('contention_duration')}")
    p.add_argument("--contention-rounds", type=int,
                   help=f"contention rounds per variant {default('contention_rounds')}")
    p.add_argument("--threads",
                   help=f"comma-separated thread counts {default('threads')}")
    p.add_argument("--hold-ms", type=float,
                   help=f"job hold time in contention, ms {default('hold', 1e3)}")
    p.add_argument("--mix-duration", type=float,
                   help=f"seconds of the daemon mix {default('mix_duration')}")
    p.add_argument("--domains", type=int,
                   help=f"domains in the scale test {default('scale_n')}")
    p.add_argument("--json", metavar="PATH",
                   help="also write every number to PATH (default: none written)")
    a = p.parse_args(list(argv) if argv is not None else None)
    s = Settings(**asdict(FULL if a.full else QUICK))
    s.threads = tuple(s.threads)
    s.sections = tuple(s.sections)
    if a.only:
        wanted = tuple(x.strip() for x in a.only.split(",") if x.strip())
        bad = [x for x in wanted if x not in QUICK.sections]
        if bad:
            p.error(f"unknown section(s) {', '.join(bad)}")
        s.sections = wanted
    if a.rounds:
        s.micro_rounds = a.rounds
    if a.round_time:
        s.round_time = a.round_time
    if a.duration:
        s.contention_duration = a.duration
    if a.contention_rounds:
        s.contention_rounds = a.contention_rounds
    if a.threads:
        s.threads = tuple(int(x) for x in a.threads.split(","))
    if a.hold_ms is not None:
        s.hold = a.hold_ms / 1e3
    if a.mix_duration:
        s.mix_duration = a.mix_duration
    if a.domains:
        s.scale_n = a.domains
    t0 = time.perf_counter()
    res = run_all(s)
    res["wall_s"] = time.perf_counter() - t0
    print(f"took {res['wall_s']:.1f} s", file=sys.stdout)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(json_safe(res), f, indent=1, default=str)
    bad = [r for r in res.get("mix", {}).get("runs", {}).values()
           if r["violations"] or r["leaks"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
