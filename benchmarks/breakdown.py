"""Where the time of begin_job+end_job and ``with dom.job()`` goes, layer by
layer: each row adds one layer to the one above it, so the difference
between two rows is what that layer costs.

    python benchmarks/breakdown.py [--round-time 0.1] [--rounds 5]

Median ns per begin+end pair (thread CPU time, interleaved rounds of >= 20
GIL switch intervals, like the benchmarks), and the ratio to two no-op cffi
calls (the floor of python -m pymigjob bench).

begin_job + end_job:
  C only          mj_begin_job + mj_end_job in a C loop (gcc; skipped without it)
  2 no-op calls   lib.mj_noop() twice: the floor of any two cffi calls
  cffi, real      the calls begin_job/end_job make: mj_begin_modify_job(p) and
                  mj_end_job(p), with the handle's ffi.gc pointer
  + 2 methods     the same calls inside two Python methods that check nothing:
                  what any Python API around them costs at least
  public          dom.begin_job(J); dom.end_job(): + the argument checks
                  (api/timeout None, the kind's type, the one-argument
                  begin's lookup) and the results' checks

with dom.job(J):
  with, empty     a `with` over an object whose __enter__/__exit__ (Python)
                  do nothing: the statement's own cost
  + job()         the object comes from a method (dom.job(J)'s shape)
  + cffi          __enter__/__exit__ make the two calls (no checks)
  public          with dom.job(J): pass
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from typing import Dict, Optional

import pymigjob as mj
from pymigjob.cli import bench
from pymigjob.cli.bench import micro, report
from pymigjob._c.binding import lib, noop

C_LOOP = r"""
#define _POSIX_C_SOURCE 200809L
#include "migjob.h"
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
                          return t.tv_sec + t.tv_nsec * 1e-9; }
int main(void) {
    mj_domain *d = mj_domain_new("vm1", 30.0, 0, false);
    const int n = 5000000; double best = 1e9;
    for (int r = 0; r < 7; r++) {
        double t0 = now();
        for (int i = 0; i < n; i++) {
            mj_begin_job(d, MJ_JOB_MODIFY, NULL, -1.0, 0.05); mj_end_job(d);
        }
        double t = (now() - t0) / n; if (t < best) best = t;
    }
    printf("%.2f\n", best * 1e9);
    return 0;
}
"""


def c_only_ns() -> Optional[float]:
    """Compile csrc/ with a C loop (into a temporary directory); None without gcc."""
    gcc = shutil.which("gcc")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    csrc = os.path.join(root, "csrc")
    if not gcc or not os.path.isdir(csrc):
        return None
    sources = [os.path.join(csrc, f) for f in sorted(os.listdir(csrc)) if f.endswith(".c")]
    with tempfile.TemporaryDirectory() as tmp:
        main_c = os.path.join(tmp, "loop.c")
        with open(main_c, "w") as f:
            f.write(C_LOOP)
        exe = os.path.join(tmp, "loop")
        r = subprocess.run([gcc, "-std=c11", "-O2", "-pthread", f"-I{csrc}", main_c,
                            *sources, "-lm", "-o", exe], capture_output=True, text=True)
        if r.returncode:
            print(f"(C loop not built: {r.stderr.strip()[:200]})", file=sys.stderr)
            return None
        out = subprocess.run([exe], capture_output=True, text=True, check=True)
        return float(out.stdout.strip())


_quick, _end = lib.mj_begin_modify_job, lib.mj_end_job


class Bare:
    """begin_job/end_job with nothing but the two C calls."""

    __slots__ = ("_p", "_g")

    def __init__(self, p):
        self._p = p
        self._g = BareGuard(p)

    def begin_job(self, job, api=None, timeout=None):
        _quick(self._p)

    def end_job(self):
        return _end(self._p)

    def job(self, job, api=None, timeout=None):
        return self._g


class BareGuard:
    __slots__ = ("_p",)

    def __init__(self, p):
        self._p = p

    def __enter__(self):
        _quick(self._p)

    def __exit__(self, t, v, tb):
        _end(self._p)


class Empty:
    """A `with` object and a job() that do nothing at all."""

    __slots__ = ()

    def __enter__(self):
        return None

    def __exit__(self, t, v, tb):
        return None

    def job(self, job, api=None, timeout=None):
        return self


LAYERS = {
    "begin_job + end_job": {
        "2 no-op cffi calls (the floor)": "noop(); noop()",
        "cffi, real: mj_begin_modify_job(p); mj_end_job(p)": "_quick(gcp); _end(gcp)",
        "+ 2 Python methods that check nothing": "bare.begin_job(J); bare.end_job()",
        "public: dom.begin_job(J); dom.end_job()": "dom.begin_job(J); dom.end_job()",
    },
    "with dom.job(J)": {
        "with over empty Python __enter__/__exit__": "with empty:\n    pass",
        "+ the object from a method (job())": "with empty.job(J):\n    pass",
        "+ the two cffi calls in __enter__/__exit__": "with bare.job(J):\n    pass",
        "public: with dom.job(J): pass": "with dom.job(J):\n    pass",
    },
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--round-time", type=float, default=0.1)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)

    drv = mj.Driver()
    dom = drv.add_domain("vm1")
    side = drv.add_domain("vm2")
    g = {"dom": dom, "J": mj.Job.MODIFY, "noop": noop, "_quick": _quick, "_end": _end,
         "gcp": side._p, "bare": Bare(side._p), "empty": Empty()}
    stmts = {k: s for table in LAYERS.values() for k, s in table.items()}
    variants = {k: micro._Variant(k, s, g) for k, s in stmts.items()}
    for v in variants.values():
        v.calibrate(max(a.round_time, bench.min_round_time()))
        v.reset()
    order = list(variants.values())
    for r in range(a.rounds):
        for i in range(len(order)):
            order[(i + r) % len(order)].round()
    floor = variants["2 no-op cffi calls (the floor)"].median()
    c_ns = c_only_ns()
    print(f"{mj.__file__}: load average {bench.loadavg()}, {a.rounds} rounds each, medians")
    for title, table in LAYERS.items():
        rows = []
        if c_ns is not None and title.startswith("begin_job"):
            rows.append(["C only: mj_begin_job + mj_end_job (gcc -O2 loop)", f"{c_ns:.1f}",
                         f"{c_ns * 1e-9 / floor:.2f}x", ""])
        prev = None
        for k in table:
            ns = variants[k].median()
            rows.append([k, f"{ns * 1e9:.1f}", f"{ns / floor:.2f}x",
                         "" if prev is None else f"{(ns - prev) * 1e9:+.1f}"])
            prev = ns
        print()
        print(report._table(rows, [title, "ns", "/2 noops", "this layer"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
