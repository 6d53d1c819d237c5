"""Where the time of begin_job+end_job and ``with dom.job()`` goes, layer by
layer, with what-if prototypes of the changes suggested to the lead.

    python benchmarks/breakdown.py [--round-time 0.1] [--rounds 5]

Layers (median ns per begin+end pair, interleaved rounds of >= 20 GIL switch
intervals, like the benchmarks):

  C only          mj_begin_job + mj_end_job in a C loop (gcc, csrc/ as is,
                  thread CPU time like everything here;
                  skipped without gcc)
  2 no-op calls   lib.mj_noop() twice: the floor of any two cffi calls
  raw cffi        lib.mj_begin_job(p, J, NULL, -1.0, 0.05) + lib.mj_end_job(p)
                  with a plain pointer, then with the handle's ffi.gc pointer
  public API      dom.begin_job(J); dom.end_job()
  with            with dom.job(J): pass

What-ifs (prototypes here, not in the library):

  1-arg entries   Python methods around two 1-argument cffi calls
                  (mj_domain_ref/unref stand in: a METH_O call builds no
                  argument tuple)
  guard direct    a JobGuard whose __enter__/__exit__ call cffi directly
  guard cached    the same guard object reused for (domain, job) when no
                  api/timeout is given
  enum/encode     Job(v) against a tuple lookup; encode_name(api) against a
                  dict of already encoded names; _enum_value against a type check
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
from pymigjob._args import enum_value as _enum_value
from pymigjob._args import name_bytes as encode_name
from pymigjob._c.binding import NULL, WAIT_SLICE, ffi, lib

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


_b, _e = lib.mj_begin_job, lib.mj_end_job
_ref, _unref = lib.mj_domain_ref, lib.mj_domain_unref


class DirectGuard:
    __slots__ = ("_p", "_job")

    def __init__(self, p, job):
        self._p = p
        self._job = job

    def __enter__(self):
        rc = _b(self._p, self._job, NULL, -1.0, WAIT_SLICE)
        if rc:
            raise RuntimeError(rc)

    def __exit__(self, t, v, tb):
        if _e(self._p) < 0:
            raise RuntimeError


class OneArgDomain:
    """begin/end as 1-argument cffi calls (ref/unref stand in for them)."""

    __slots__ = ("_p", "_g")

    def __init__(self, p):
        self._p = p
        self._g = OneArgGuard(p)

    def begin_job(self, job, api=None, timeout=None):
        if _ref(self._p) < 0:
            raise RuntimeError

    def end_job(self):
        refs = _unref(self._p)
        if refs < 0:
            raise RuntimeError
        return refs

    def job(self, job, api=None, timeout=None):
        return self._g


class OneArgGuard:
    __slots__ = ("_p",)

    def __init__(self, p):
        self._p = p

    def __enter__(self):
        if _ref(self._p) < 0:
            raise RuntimeError

    def __exit__(self, t, v, tb):
        if _unref(self._p) < 0:
            raise RuntimeError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--round-time", type=float, default=0.1)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)

    drv = mj.Driver()
    dom = drv.add_domain("vm1")
    raw = ffi.cast("mj_domain *", dom._p)
    side = drv.add_domain("vm2")                 # ref/unref stand-ins work on this one
    one = OneArgDomain(ffi.cast("mj_domain *", side._p))
    direct = DirectGuard(raw, mj.Job.MODIFY)
    g = {"dom": dom, "J": mj.Job.MODIFY, "noop": lib.mj_noop, "_b": _b, "_e": _e,
         "raw": raw, "gcp": dom._p, "NULL": NULL, "one": one, "direct": direct,
         "DirectGuard": DirectGuard, "Job": mj.Job, "JOBS": tuple(mj.Job),
         "encode_name": encode_name, "API": {"setMemory": b"setMemory"},
         "_enum_value": _enum_value, "lk": threading.Lock()}
    stmts: Dict[str, str] = {
        "2 no-op cffi calls (floor)": "noop(); noop()",
        "threading.Lock acquire+release": "lk.acquire(); lk.release()",
        "raw cffi begin+end, plain pointer": "_b(raw, J, NULL, -1.0, 0.05); _e(raw)",
        "raw cffi begin+end, ffi.gc pointer": "_b(gcp, J, NULL, -1.0, 0.05); _e(gcp)",
        "public dom.begin_job(J); dom.end_job()": "dom.begin_job(J); dom.end_job()",
        "public with dom.job(J): pass": "with dom.job(J):\n    pass",
        "what-if: 1-arg cffi entries, Python methods": "one.begin_job(J); one.end_job()",
        "what-if: 1-arg entries + cached guard, with": "with one.job(J):\n    pass",
        "what-if: guard calling cffi directly (new)": "with DirectGuard(raw, J):\n    pass",
        "what-if: guard calling cffi directly (cached)": "with direct:\n    pass",
        "Job(4) (EnumMeta.__call__)": "Job(4)",
        "JOBS[4] (tuple of members)": "JOBS[4]",
        "encode_name('setMemory', 'api')": "encode_name('setMemory', 'api')",
        "API.get('setMemory') (cache)": "API.get('setMemory')",
        "_enum_value(Job, J, 'job')": "_enum_value(Job, J, 'job')",
        "type(J) is Job (fast path)": "type(J) is Job",
    }
    variants = {k: micro._Variant(k, s, g) for k, s in stmts.items()}
    for v in variants.values():
        v.calibrate(max(a.round_time, bench.min_round_time()))
        v.reset()
    order = list(variants.values())
    for r in range(a.rounds):
        for i in range(len(order)):
            order[(i + r) % len(order)].round()
    floor = variants["2 no-op cffi calls (floor)"].median()
    c_ns = c_only_ns()
    print(f"load average {bench.loadavg()}, {a.rounds} rounds each, medians")
    rows = []
    if c_ns is not None:
        rows.append(["C only: mj_begin_job + mj_end_job (gcc -O2 loop)", f"{c_ns:.1f}",
                     f"{c_ns * 1e-9 / floor:.2f}x"])
    for k, v in variants.items():
        rows.append([k, f"{v.median() * 1e9:.1f}", f"{v.median() / floor:.2f}x"])
    print(report._table(rows, ["layer", "ns", "/2 noops"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
