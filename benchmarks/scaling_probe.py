"""benchmarks/scaling.py's view of the machine: the same begin+end loops in
C (what two cores give at this moment, the ceiling for Python) and the CPU
time other processes used meanwhile."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---- the C calibration -------------------------------------------------------------

C_SCALE = r"""
#define _POSIX_C_SOURCE 200809L
#include "migjob.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
                          return t.tv_sec + t.tv_nsec * 1e-9; }
typedef struct { mj_domain *d; double until; long n; } arg;
static pthread_barrier_t start;
static void *loop(void *p) {
    arg *a = p; long n = 0;
    pthread_barrier_wait(&start);
    double until = now() + a->until;
    do {
        for (int i = 0; i < 200; i++) {
            if (mj_begin_job(a->d, MJ_JOB_MODIFY, NULL, -1.0, 0.05) != 0) abort();
            mj_end_job(a->d);
        }
        n += 200;
    } while (now() < until);
    a->n = n;
    return NULL;
}
/* pairs per second with `threads` threads; shared: one domain for all */
static double run(int threads, int shared, double secs) {
    pthread_t t[2]; arg a[2]; mj_domain *d[2];
    for (int i = 0; i < threads; i++)
        d[i] = shared && i ? d[0] : mj_domain_new(i ? "vm2" : "vm1", 30.0, 0, false);
    pthread_barrier_init(&start, NULL, threads + 1);
    for (int i = 0; i < threads; i++) {
        a[i] = (arg){ d[i], secs, 0 };
        pthread_create(&t[i], NULL, loop, &a[i]);
    }
    pthread_barrier_wait(&start);
    double t0 = now(); long total = 0;
    for (int i = 0; i < threads; i++) { pthread_join(t[i], NULL); total += a[i].n; }
    double t1 = now();
    pthread_barrier_destroy(&start);
    for (int i = 0; i < threads; i++) if (!(shared && i)) mj_domain_unref(d[i]);
    return total / (t1 - t0);
}
int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 0.2;
    /* one thread, two on their own domains, two on one domain */
    double one = run(1, 0, secs), own = run(2, 0, secs), shared = run(2, 1, secs);
    printf("%.1f %.1f %.1f\n", one, own, shared);
    return 0;
}
"""


def build_c_calibration(tmp: str) -> Tuple[Optional[str], str]:
    """(path of the C loop, "") or (None, why not)."""
    gcc = shutil.which("gcc")
    csrc = os.path.join(ROOT, "csrc")
    if not gcc:
        return None, "no gcc: no C calibration"
    if not os.path.isdir(csrc):
        return None, f"no {csrc}: no C calibration"
    # every C file of the core, whatever it is split into, as build_ffi.py
    # builds it (testing.c too: the begins call its grant hook)
    sources = [os.path.join(csrc, f) for f in sorted(os.listdir(csrc)) if f.endswith(".c")]
    main_c = os.path.join(tmp, "cscale.c")
    with open(main_c, "w") as f:
        f.write(C_SCALE)
    exe = os.path.join(tmp, "cscale")
    r = subprocess.run([gcc, "-std=c11", "-O2", "-pthread", f"-I{csrc}", main_c, *sources,
                        "-lm", "-o", exe], capture_output=True, text=True)
    if r.returncode:
        return None, f"C calibration not built: {r.stderr.strip()[:300]}"
    return exe, ""


# ---- what else the machine was doing -----------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_busy_ticks() -> Optional[int]:
    """All CPUs' busy time (ticks) since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)   # idle + iowait
    return sum(fields[:8]) - idle


def _own_ticks() -> Optional[int]:
    """This process's CPU time and its waited-for children's (ticks: utime +
    stime, every thread; cutime + cstime: the C calibration loop)."""
    try:
        with open("/proc/self/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])


class Others:
    """CPU time other processes used (in cores) over a stretch of wall time."""

    def __enter__(self) -> "Others":
        self.busy0, self.own0, self.t0 = _cpu_busy_ticks(), _own_ticks(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        busy1, own1, t1 = _cpu_busy_ticks(), _own_ticks(), time.perf_counter()
        self.wall = t1 - self.t0
        if None in (self.busy0, self.own0, busy1, own1):
            self.ticks = None
        else:
            self.ticks = max(0, (busy1 - self.busy0) - (own1 - self.own0))
