"""2. contention: many threads on one domain, each holding the job for a
short sleep (the GIL released), against a Lock, a plain condition-variable
job lock and one thread with no lock at all."""

from __future__ import annotations

import functools
import math
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

from .common import TARGETS, impl_by_name, load_pure, loadavg, median, min_round_time, percentile

# ---------------------------------------------------------------------------
# 2. contention on one domain


class CondJobLock:
    """The plain condition-variable job lock a Python author writes first
    (libvirt 2011: one condition, one signal per end)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._busy = False

    def acquire(self) -> None:
        with self._cond:
            while self._busy:
                self._cond.wait()
            self._busy = True

    def release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify()


def _noop_call() -> None:
    return None


def contention_pair(kind: str) -> Tuple[Callable[[], Any], Callable[[], Any]]:
    """(acquire, release) for one contended object of `kind`."""
    if kind in ("pymigjob", "pure"):
        impl = impl_by_name(kind)
        dom = impl.Driver(job_wait_timeout=120.0).add_domain("contended")
        return functools.partial(dom.begin_job, impl.Job.MODIFY), dom.end_job
    if kind == "lock":
        lk = threading.Lock()
        return lk.acquire, lk.release
    if kind == "condvar":
        cj = CondJobLock()
        return cj.acquire, cj.release
    if kind == "nolock":
        return _noop_call, _noop_call
    raise ValueError(kind)


class Crew:
    """N persistent threads hammering one (acquire, release) pair; each round
    runs for `duration`, every thread holding for `hold` seconds (a sleep:
    the GIL is released) per acquisition."""

    def __init__(self, kind: str, nthreads: int, hold: float) -> None:
        self.kind = kind
        self.n = nthreads
        self.hold = hold
        self.acquire, self.release = contention_pair(kind)
        self._start = threading.Barrier(nthreads + 1)
        self._end = threading.Barrier(nthreads + 1)
        self._closing = False
        self._deadline = 0.0
        self._results: List[Tuple[int, List[float]]] = [(0, [])] * nthreads
        self._errors: List[BaseException] = []
        self._threads = [threading.Thread(target=self._work, args=(i,), daemon=True,
                                          name=f"bench-{kind}-{i}")
                         for i in range(nthreads)]
        for t in self._threads:
            t.start()
        self.rounds: List[Dict[str, Any]] = []

    def _work(self, idx: int) -> None:
        acquire, release, hold = self.acquire, self.release, self.hold
        clock, sleep = time.perf_counter, time.sleep
        while True:
            self._start.wait()
            if self._closing:
                return
            deadline = self._deadline
            waits: List[float] = []
            note = waits.append
            n = 0
            try:
                while clock() < deadline:
                    t0 = clock()
                    acquire()
                    t1 = clock()
                    sleep(hold)
                    release()
                    note(t1 - t0)
                    n += 1
            except BaseException as e:  # reported by round()
                self._errors.append(e)
            self._results[idx] = (n, waits)
            self._end.wait()

    def round(self, duration: float) -> float:
        """Run one round; returns its wall time and records its statistics."""
        self._deadline = time.perf_counter() + duration
        self._start.wait()
        t0 = time.perf_counter()
        self._end.wait()
        elapsed = time.perf_counter() - t0
        if self._errors:
            raise RuntimeError(f"{self.kind} crew failed: {self._errors[0]!r}") \
                from self._errors[0]
        counts = [n for n, _ in self._results]
        waits = sorted(w for _, ws in self._results for w in ws)
        total = sum(counts)
        self.rounds.append({
            "elapsed_s": elapsed, "ops": total,
            "throughput": total / elapsed,
            "wait_p50_ms": percentile(waits, 50) * 1e3,
            "wait_p99_ms": percentile(waits, 99) * 1e3,
            "wait_max_ms": (waits[-1] if waits else math.nan) * 1e3,
            "per_thread_min": min(counts), "per_thread_max": max(counts),
        })
        return elapsed

    def close(self) -> None:
        self._closing = True
        self._start.wait()
        for t in self._threads:
            t.join()

    def summary(self) -> Dict[str, Any]:
        """Medians over rounds (the max wait: the worst round)."""
        rs = self.rounds
        out: Dict[str, Any] = {"threads": self.n, "rounds": len(rs)}
        for k in ("throughput", "wait_p50_ms", "wait_p99_ms", "elapsed_s"):
            out[k] = median([r[k] for r in rs])
        out["wait_max_ms"] = max(r["wait_max_ms"] for r in rs)
        out["per_thread_min"] = min(r["per_thread_min"] for r in rs)
        out["per_thread_max"] = max(r["per_thread_max"] for r in rs)
        out["ops"] = sum(r["ops"] for r in rs)
        return out


CONTENTION_KINDS = ("pymigjob", "pure", "lock", "condvar")


class ContentionBench:
    """One thread count: pymigjob, and interleaved with it the pure twin, a
    threading.Lock, a plain condvar job lock and one thread with no lock."""

    def __init__(self, nthreads: int, hold: float = 0.0005, duration: float = 1.0) -> None:
        self.n = nthreads
        self.hold = hold
        # long enough for several trips round the whole queue
        self.duration = max(duration, min_round_time(), 8 * nthreads * hold)
        pure, self.pure_why = load_pure()
        kinds = [k for k in CONTENTION_KINDS if k != "pure" or pure is not None]
        self.crews: Dict[str, Crew] = {k: Crew(k, nthreads, hold) for k in kinds}
        self.crews["nolock-1"] = Crew("nolock", 1, hold)
        self.load_before = loadavg()
        self._turn = 0

    def subject_round(self) -> float:
        return self.crews["pymigjob"].round(self.duration)

    def baseline_round(self) -> None:
        names = [n for n in self.crews if n != "pymigjob"]
        self._turn += 1
        for i in range(len(names)):
            self.crews[names[(i + self._turn) % len(names)]].round(self.duration)

    def run(self, rounds: int) -> Dict[str, Any]:
        for _ in range(rounds):
            self.baseline_round()
            self.subject_round()
        return self.result()

    def close(self) -> None:
        for c in self.crews.values():
            c.close()

    def result(self) -> Dict[str, Any]:
        s = {n: c.summary() for n, c in self.crews.items()}
        base = s["nolock-1"]["throughput"]
        per_hold = 1.0 / base          # one hold as it really lasts (sleep overshoot)
        mj = s["pymigjob"]
        res: Dict[str, Any] = {
            "threads": self.n, "hold_ms": self.hold * 1e3,
            "duration_s": self.duration, "variants": s,
            "measured_hold_ms": per_hold * 1e3,
            "ratios": {},
            "loadavg": {"before": self.load_before, "after": loadavg()},
            "pure": "measured" if "pure" in s else self.pure_why,
            "checks": [],
        }
        for n, v in s.items():
            v["throughput_vs_nolock"] = v["throughput"] / base
            v["max_wait_vs_n_holds"] = v["wait_max_ms"] / (self.n * self.hold * 1e3)
            v["fairness_min_over_max"] = (v["per_thread_min"] / v["per_thread_max"]
                                          if v["per_thread_max"] else math.nan)
        r = res["ratios"]
        r["pymigjob/nolock-1 throughput"] = mj["throughput_vs_nolock"]
        r["pymigjob max wait / (n x hold)"] = mj["max_wait_vs_n_holds"]
        for other in ("pure", "lock", "condvar"):
            if other in s:
                r[f"pymigjob/{other} throughput"] = mj["throughput"] / s[other]["throughput"]
                r[f"{other}/pymigjob max wait"] = s[other]["wait_max_ms"] / mj["wait_max_ms"]
        res["ratios"] = {k: round(v, 3) for k, v in r.items()}
        if self.n == 64:
            res["checks"].append(TARGETS["fair64/max_wait"].check(mj["max_wait_vs_n_holds"]))
            res["checks"].append(TARGETS["fair64/throughput"].check(mj["throughput_vs_nolock"]))
        return res


