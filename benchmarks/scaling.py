"""Two threads against one: 3.11, 3.14t with the GIL and 3.14t without it,
side by side, in one run (issue 11).

    python benchmarks/scaling.py                          # this interpreter (3.14t: GIL on and off)
    python benchmarks/scaling.py --python 3.11=/path/to/python3.11 \\
        --python 3.14t=/path/to/python3.14t                # several, one table
    python benchmarks/scaling.py --layers                  # + where it is lost, layer by layer
    python benchmarks/scaling.py --json out.json --gate    # CI (.ci/freethreaded.sh)

For every interpreter (a free-threaded one runs twice: PYTHON_GIL=1 and
PYTHON_GIL=0) a child process measures, in interleaved rounds of fixed wall
time, the begin+end pairs per second of

  own       1 thread, then 2 threads, each on its own domain:
            ``dom.begin_job(J); dom.end_job()``
  api       the same with an API name: ``dom.begin_job(J, api="setMemory")``
  shared    2 threads on one shared domain (against 1 thread alone)
  noop2     the floor: two no-op cffi calls (``lib.mj_noop()`` twice), 1 and 2 threads
  C         calibration: the same begin+end loops in C (pthreads, csrc/ built
            with gcc here), own domains and one shared domain

and reports ratios (2 threads / 1 thread) and medians, never a lone time.

Two idle cores are needed for "2 threads = 2x".  The machine is shared, so
each run measures what else was running: the CPU time other processes used
during the two-thread rounds (/proc/stat minus this child's own, in cores),
the load average, and the C loop's own scaling in the same rounds (the
ceiling for this machine at that moment).  A verdict on a ratio is given
only when the C loop reached 1.8x and others used < 0.25 cores; otherwise
the table says the cores were not idle.  For a busy machine it also
estimates what two threads would reach side by side, from their CPU time
per pair against one thread's and how much of it they ran together (see
child); that estimate is reported, never gated.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

# sibling modules: this file runs as a script (sys.path[0] is benchmarks/)
from scaling_probe import _TICK, Others, build_c_calibration  # noqa: E402
from scaling_report import IDLE_OTHERS, MIN_OVERLAP, print_table, verdicts  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

#: pairs between two looks at the clock
BATCH = 200

# ---- the child: one interpreter (and GIL setting) ------------------------------------

def _loops() -> Dict[str, Callable[..., None]]:
    """Each loop runs pairs until `until` (perf_counter) and returns how many;
    everything it touches is a local (the natural way to write a worker)."""

    def own(dom: Any, J: Any, until: float) -> int:
        n = 0
        clock = time.perf_counter
        while True:
            for _ in range(BATCH):
                dom.begin_job(J)
                dom.end_job()
            n += BATCH
            if clock() >= until:
                return n

    def api(dom: Any, J: Any, until: float) -> int:
        n = 0
        clock = time.perf_counter
        while True:
            for _ in range(BATCH):
                dom.begin_job(J, api="setMemory")
                dom.end_job()
            n += BATCH
            if clock() >= until:
                return n

    def noop2(dom: Any, J: Any, until: float) -> int:
        from pymigjob._c.binding import noop

        n = 0
        clock = time.perf_counter
        while True:
            for _ in range(BATCH):
                noop()
                noop()
            n += BATCH
            if clock() >= until:
                return n

    def with_job(dom: Any, J: Any, until: float) -> int:
        n = 0
        clock = time.perf_counter
        while True:
            for _ in range(BATCH):
                with dom.job(J):
                    pass
            n += BATCH
            if clock() >= until:
                return n

    def raw_loop(p: Any, J: Any, until: float) -> int:
        from pymigjob._c.binding import NULL, lib

        b, e, j = lib.mj_begin_job, lib.mj_end_job, int(J)
        n = 0
        clock = time.perf_counter
        while True:
            for _ in range(BATCH):
                b(p, j, NULL, -1.0, 0.05)
                e(p)
            n += BATCH
            if clock() >= until:
                return n

    def raw(dom: Any, J: Any, until: float) -> int:
        from pymigjob._c.binding import ffi

        # a plain pointer, this thread's own
        return raw_loop(ffi.cast("mj_domain *", dom._p), J, until)

    def raw_gc(dom: Any, J: Any, until: float) -> int:
        return raw_loop(dom._p, J, until)       # the handle's ffi.gc pointer

    def quick_raw(dom: Any, J: Any, until: float) -> int:
        from pymigjob._c.binding import lib

        p = dom._p
        q, e = lib.mj_begin_modify_job, lib.mj_end_job
        n = 0
        clock = time.perf_counter
        while True:
            for _ in range(BATCH):
                q(p)
                e(p)
            n += BATCH
            if clock() >= until:
                return n

    return {"own": own, "api": api, "noop2": noop2, "with": with_job, "raw": raw,
            "raw_gc": raw_gc, "quick_raw": quick_raw}


def _round(loop: Callable[..., int], doms: List[Any], J: Any,
           secs: float) -> Tuple[float, Others, float, float]:
    """One round: len(doms) threads (doms[i] is thread i's domain, possibly
    the same one); returns (pairs per second, what others did meanwhile,
    the threads' CPU seconds per pair, overlap).  overlap: the share of the
    threads' CPU time during which both of them ran, at least (2 threads
    whose CPU time adds up to more than the wall time ran together for the
    excess); 0 for one thread."""
    k = len(doms)
    start = threading.Barrier(k + 1)
    counts = [0] * k
    cpu = [0.0] * k
    errors: List[BaseException] = []

    def body(i: int) -> None:
        try:
            start.wait()
            c0 = time.thread_time()
            counts[i] = loop(doms[i], J, time.perf_counter() + secs)
            cpu[i] = time.thread_time() - c0
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(k)]
    for t in threads:
        t.start()
    with Others() as others:
        start.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    total = sum(cpu)
    overlap = 2 * max(0.0, total - wall) / total if k == 2 and total > 0 else 0.0
    return sum(counts) / wall, others, total / max(1, sum(counts)), min(1.0, overlap)


def child(cases: List[str], rounds: int, secs: float, cexe: Optional[str],
          budget: float) -> Dict[str, Any]:
    """Rounds until every case has `rounds` rounds on idle cores (other
    processes used < IDLE_OTHERS cores while it ran) or `budget` seconds
    passed.  A round of a case is its 1-thread and 2-thread runs back to
    back (order alternating); the C calibration runs once per round."""
    import pymigjob as mj

    drv = mj.Driver()
    # created one after the other by this (main) thread, used by the
    # workers: the usual shape of a daemon's domain list
    d1, d2 = drv.add_domain("vm1"), drv.add_domain("vm2")
    J = mj.Job.MODIFY
    loops = _loops()
    units = [(case, [d1], [d1, d1] if case == "shared" else [d1, d2]) for case in cases]
    #: per case, per round: (1-thread pairs/s, 2-thread pairs/s, other
    #: processes' cores, CPU per pair 2 threads / 1 thread, overlap)
    runs: Dict[str, List[Tuple[float, float, float, float, float]]] = {c: [] for c in cases}
    c_runs: List[Tuple[List[float], float]] = []
    # warm-up (specialisation, caches, lazily made guards), not recorded
    for case, one, two in units:
        loop = loops["own" if case == "shared" else case]
        _round(loop, one, J, secs / 4)
        _round(loop, two, J, secs / 4)
    load_before = list(os.getloadavg())
    t_end = time.perf_counter() + budget
    r = 0

    def idle_count(xs: List[Tuple[float, float, float, float, float]]) -> int:
        return sum(1 for x in xs if x[2] < IDLE_OTHERS)

    while True:
        todo = [u for u in units if idle_count(runs[u[0]]) < rounds]
        c_todo = cexe and sum(1 for _, o in c_runs if o < IDLE_OTHERS) < rounds
        if (not todo and not c_todo) or (time.perf_counter() > t_end and r >= rounds):
            break
        for case, one, two in (todo if r % 2 == 0 else todo[::-1]):
            loop = loops["own" if case == "shared" else case]
            with Others() as others:
                if r % 2:
                    b, _, cpu2, overlap = _round(loop, two, J, secs)
                    a, _, cpu1, _ = _round(loop, one, J, secs)
                else:
                    a, _, cpu1, _ = _round(loop, one, J, secs)
                    b, _, cpu2, overlap = _round(loop, two, J, secs)
            cores = (others.ticks / _TICK / others.wall) if others.ticks is not None else 9.0
            runs[case].append((a, b, cores, cpu2 / cpu1, overlap))
        if c_todo:
            with Others() as others:
                out = subprocess.run([cexe, str(secs)], capture_output=True, text=True,
                                     check=True).stdout.split()
            cores = (others.ticks / _TICK / others.wall) if others.ticks is not None else 9.0
            c_runs.append(([float(x) for x in out], cores))
        r += 1
    for d in (d1, d2):
        assert d.refs == 1 and d.jobs_queued == 0, "a benchmark loop leaked a job"
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    res: Dict[str, Any] = {
        "python": sys.version.split()[0] + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED")
                                            else ""),
        "gil": gil, "round_s": secs, "rounds_wanted": rounds,
        "loadavg": {"before": load_before, "after": list(os.getloadavg())},
        "pairs_per_s": {}, "ratios": {}, "ratio_rounds": {}, "rounds": {}, "idle_rounds": {},
        "others_cores": {}, "cpu_per_pair_ratio": {}, "overlap": {}, "estimate": {},
    }
    for case, xs in runs.items():
        idle = [x for x in xs if x[2] < IDLE_OTHERS]
        use = idle if len(idle) >= min(3, rounds) else xs
        res["rounds"][case] = len(xs)
        res["idle_rounds"][case] = len(idle)
        res["others_cores"][case] = round(statistics.median(x[2] for x in use), 2)
        res["pairs_per_s"][f"{case}/1"] = statistics.median(x[0] for x in use)
        res["pairs_per_s"][f"{case}/2"] = statistics.median(x[1] for x in use)
        res["ratio_rounds"][case] = [round(x[1] / x[0], 3) for x in use]
        res["ratios"][case] = statistics.median(x[1] / x[0] for x in use)
        # On a busy machine: what running side by side cost each pair.  The
        # rounds' CPU per pair is a mix of pairs run alone (as with one
        # thread) and pairs run while the other thread ran too; with the
        # overlap as that mix's share, the second kind's cost is
        # cpu1 * (1 + (ratio - 1) / overlap), and two threads that always ran
        # side by side would reach 2 / (1 + (ratio - 1) / overlap) of one.
        # An estimate (the overlap is a lower bound, so it leans low), only
        # from rounds where the threads overlapped for >= MIN_OVERLAP.
        res["cpu_per_pair_ratio"][case] = statistics.median(x[3] for x in xs)
        res["overlap"][case] = statistics.median(x[4] for x in xs)
        est = [2 / (1 + (x[3] - 1) / x[4]) for x in xs if x[4] >= MIN_OVERLAP]
        res["estimate"][case] = (statistics.median(est), len(est)) if est else None
    # every round, for a closer look: (1 thread, 2 threads, others' cores,
    # CPU per pair 2 threads / 1, overlap)
    res["round_data"] = {case: [[round(v, 4) for v in x] for x in xs] for case, xs in runs.items()}
    if c_runs:
        idle = [c for c in c_runs if c[1] < IDLE_OTHERS]
        use = [c for c, _ in (idle if len(idle) >= min(3, rounds) else c_runs)]
        res["c"] = {
            "rounds": len(c_runs), "idle_rounds": len(idle),
            "pairs_per_s": {"1": statistics.median(c[0] for c in use),
                            "own/2": statistics.median(c[1] for c in use),
                            "shared/2": statistics.median(c[2] for c in use)},
            "ratios": {"own": statistics.median(c[1] / c[0] for c in use),
                       "shared": statistics.median(c[2] / c[0] for c in use)},
        }
    return res


# ---- the parent: children, table, verdicts ---------------------------------------------

def _configs(specs: List[str]) -> List[Tuple[str, str, Dict[str, str]]]:
    """(label, python, env) per child: a free-threaded python twice."""
    if not specs:
        specs = [f"this={sys.executable}"]
    out = []
    for spec in specs:
        label, _, path = spec.partition("=")
        if not path:
            label, path = os.path.basename(spec), spec
        ft = subprocess.run([path, "-c", "import sysconfig; print(bool(sysconfig.get_config_var"
                             "('Py_GIL_DISABLED')))"], capture_output=True, text=True,
                            check=True).stdout.strip() == "True"
        ver = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
        if ft:
            out.append((f"{ver}t GIL", path, {"PYTHON_GIL": "1"}))
            out.append((f"{ver}t no GIL", path, {"PYTHON_GIL": "0"}))
        else:
            out.append((ver, path, {}))
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", action="append", default=[], metavar="LABEL=PATH",
                    help="an interpreter to measure (repeatable; default: this one)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds per case on idle cores (default 5)")
    ap.add_argument("--budget", type=float, default=60.0,
                    help="seconds per interpreter to wait for idle rounds (default 60)")
    ap.add_argument("--round-time", type=float, default=0.25,
                    help="seconds per round (default 0.25)")
    ap.add_argument("--layers", action="store_true",
                    help="also raw cffi, ffi.gc pointer, 1-arg begin, with dom.job()")
    ap.add_argument("--json", metavar="PATH", help="write the results here")
    ap.add_argument("--gate", action="store_true",
                    help="exit 1 when a gate (scaling_report.GATES) fails on idle cores (free-threaded, "
                         "GIL off only)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    cases = ["own", "api", "shared", "noop2"]
    if a.layers:
        cases += ["with", "raw", "raw_gc", "quick_raw"]
    if a.child:
        res = child(cases, a.rounds, a.round_time, a.child if a.child != "-" else None,
                    a.budget)
        print(json.dumps(res))
        return 0
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        cexe, why = build_c_calibration(tmp)
        if why:
            print(f"note: {why}")
        for label, py, env in _configs(a.python):
            e = dict(os.environ, **env)
            e.pop("PYMIGJOB_IMPL", None)
            cmd = [py, os.path.abspath(__file__), "--child", cexe or "-",
                   "--rounds", str(a.rounds), "--round-time", str(a.round_time),
                   "--budget", str(a.budget)]
            if a.layers:
                cmd.append("--layers")
            t0 = time.perf_counter()
            p = subprocess.run(cmd, env=e, capture_output=True, text=True)
            if p.returncode:
                print(f"{label}: child failed:\n{p.stdout}{p.stderr}", file=sys.stderr)
                return 2
            res = json.loads(p.stdout.strip().splitlines()[-1])
            res["label"], res["seconds"] = label, round(time.perf_counter() - t0, 1)
            res["verdict"] = verdicts(res)
            results.append((label, res))
    print(f"scaling: {os.cpu_count()} CPUs; {a.rounds} idle rounds x {a.round_time} s "
          f"per case wanted, {a.budget:.0f} s budget per interpreter")
    print_table(results)
    if a.json:
        with open(a.json, "w") as f:
            json.dump([r for _, r in results], f, indent=1)
    if a.gate:
        failed = [f"{label}: {c} {x['ratio']:.2f}x < gate {x['gate']} ({x['gate_why']})"
                  for label, r in results if not r["gil"]
                  for c, x in r["verdict"]["cases"].items()
                  if x["gate"] is not None and x["judged"] and not x["gate_ok"]]
        for f in failed:
            print(f"SCALING GATE FAILED: {f}", file=sys.stderr)
        if not failed:
            judged = sum(1 for _, r in results if not r["gil"]
                         for x in r["verdict"]["cases"].values()
                         if x["gate"] is not None and x["judged"])
            print(f"scaling gates: {judged} judged on idle cores, all hold"
                  + ("" if judged else " (none judged: the cores were not idle)"))
        return 1 if failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
