"""5. asyncio waiting (pymigjob.aio) against the usual alternatives, in the same
run, interleaved round by round:

- wake-up latency: a thread holds the job and releases it after a random
  2-12 ms; the time from just before its end_job() to the moment the
  coroutine holds the job.  ``begin_job_async`` (eventfd notifier) against
  ``asyncio.to_thread(dom.begin_job)`` and against polling (``begin_job``
  with ``timeout=0`` + ``asyncio.sleep``, 5 ms and 1 ms).  pedantic times
  the notifier round (hold + wake); the latencies themselves, their medians,
  p90 and the ratios are in extra_info.
- 10 000 coroutines waiting on 100 domains (all queued at once behind a
  holder, then released): wall time and throughput, extra threads
  (``threading.active_count``), and memory per waiter (tracemalloc peak for
  Python objects, VmRSS delta for everything, C waiters included), for
  ``begin_job_async`` against ``to_thread(begin_job)``.
- the uncontended path: ``await begin_job_async`` + ``end_job`` against the
  blocking ``begin_job`` + ``end_job`` (coroutine driven without a loop;
  thread CPU time per pair and the ratio).

Run: ``pytest benchmarks/test_aio_bench.py [--bench-quick] --benchmark-json=aio.json``
"""

from __future__ import annotations

import asyncio
import gc
import os
import queue
import random
import statistics
import threading
import time
import tracemalloc
from typing import Any, Callable, Dict, List


import pymigjob as mj

J = mj.Job
perf_ns = time.perf_counter_ns


def _median_us(xs: List[int]) -> float:
    return round(statistics.median(xs) / 1000.0, 1)


def _p90_us(xs: List[int]) -> float:
    return round(sorted(xs)[int(0.9 * (len(xs) - 1))] / 1000.0, 1)


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Releaser(threading.Thread):
    """Ends the domain's job `hold` seconds after each request, stamping the
    time just before end_job()."""

    def __init__(self, dom: mj.Domain) -> None:
        super().__init__(daemon=True, name="releaser")
        self.dom = dom
        self.requests: queue.Queue[float | None] = queue.Queue()
        self.t0 = 0

    def run(self) -> None:
        while True:
            hold = self.requests.get()
            if hold is None:
                return
            time.sleep(hold)
            self.t0 = perf_ns()
            self.dom.end_job()


def _waiters(dom: mj.Domain, rel: Releaser) -> Dict[str, Callable[[], Any]]:
    async def notifier() -> int:
        await dom.begin_job_async(J.QUERY)
        t1 = perf_ns()
        dom.end_job()
        return t1 - rel.t0

    async def to_thread() -> int:
        await asyncio.to_thread(dom.begin_job, J.QUERY)
        t1 = perf_ns()
        dom.end_job()
        return t1 - rel.t0

    def poller(period: float) -> Callable[[], Any]:
        async def poll() -> int:
            while True:
                try:
                    dom.begin_job(J.QUERY, timeout=0)
                    break
                except mj.JobTimeout:
                    await asyncio.sleep(period)
            t1 = perf_ns()
            dom.end_job()
            return t1 - rel.t0
        return poll

    return {"notifier": notifier, "to_thread": to_thread,
            "poll_5ms": poller(0.005), "poll_1ms": poller(0.001)}


def test_wake_latency(benchmark: Any, settings: Any) -> None:
    benchmark.group = "aio-wake"
    rounds = 15 if settings.quick else 120
    dom = mj.Driver(job_wait_timeout=10).add_domain("wake")
    rel = Releaser(dom)
    rel.start()
    loop = asyncio.new_event_loop()
    waiters = _waiters(dom, rel)
    lat: Dict[str, List[int]] = {name: [] for name in waiters}
    rng = random.Random(6)

    def one(name: str) -> None:
        dom.begin_job(J.MODIFY, api="holder")
        rel.requests.put(rng.uniform(0.002, 0.012))
        lat[name].append(loop.run_until_complete(waiters[name]()))

    def baselines() -> None:
        for name in ("to_thread", "poll_5ms", "poll_1ms"):
            one(name)

    try:
        for name in waiters:  # warm up: the executor's threads, the notifier path
            one(name)
            lat[name].clear()
        benchmark.pedantic(one, args=("notifier",), setup=baselines, rounds=rounds,
                           iterations=1, warmup_rounds=0)
    finally:
        rel.requests.put(None)
        rel.join()
        loop.close()
    assert dom.jobs_queued == 0 and dom.refs == 1

    med = {name: _median_us(xs) for name, xs in lat.items()}
    info = benchmark.extra_info
    info["rounds"] = rounds
    info["hold_ms"] = "uniform 2-12"
    for name, xs in lat.items():
        info[f"{name}_median_us"] = med[name]
        info[f"{name}_p90_us"] = _p90_us(xs)
    for name in ("to_thread", "poll_5ms", "poll_1ms"):
        info[f"{name}_over_notifier"] = round(med[name] / med["notifier"], 2)
    info["loadavg"] = os.getloadavg()


# ---- 10 000 coroutines on 100 domains ---------------------------------------------

N_DOMAINS = 100
N_WAITERS = 10_000


async def _crowd(variant: str, doms: List[mj.Domain], probe: Callable[[], None] | None,
                 stats: Dict[str, Any]) -> None:
    """All waiters queue behind a holder on each domain; then the holders
    let go and every waiter takes its job for one loop step."""
    base_threads = threading.active_count()
    max_threads = [base_threads]

    async def user(dom: mj.Domain) -> None:
        if variant == "notifier":
            await dom.begin_job_async(J.MODIFY)
        else:
            await asyncio.to_thread(dom.begin_job, J.MODIFY)
        n = threading.active_count()
        if n > max_threads[0]:
            max_threads[0] = n
        await asyncio.sleep(0)
        dom.end_job()

    for d in doms:
        d.begin_job(J.MODIFY, api="holder")
    t0 = time.perf_counter()
    tasks = [asyncio.ensure_future(user(doms[i % N_DOMAINS])) for i in range(N_WAITERS)]
    for _ in range(3):
        await asyncio.sleep(0)  # every coroutine has begun and is waiting
    if variant == "notifier":
        assert all(d.jobs_queued == 1 + N_WAITERS // N_DOMAINS for d in doms)
    if probe is not None:
        probe()
    t1 = time.perf_counter()
    for d in doms:
        d.end_job()
    await asyncio.gather(*tasks)
    t2 = time.perf_counter()
    stats["queue_s"] = t1 - t0
    stats["drain_s"] = t2 - t1
    stats["total_s"] = t2 - t0
    stats["extra_threads"] = max_threads[0] - base_threads


def _crowd_run(variant: str, measure_memory: bool = False) -> Dict[str, Any]:
    drv = mj.Driver(job_wait_timeout=300)
    doms = [drv.add_domain(f"vm{i}") for i in range(N_DOMAINS)]
    stats: Dict[str, Any] = {}

    def probe() -> None:
        stats["rss_delta"] = _rss() - stats["rss0"]
        stats["py_delta"] = tracemalloc.get_traced_memory()[0] - stats["py0"]

    if measure_memory:
        gc.collect()
        stats["rss0"] = _rss()
        tracemalloc.start()
        stats["py0"] = tracemalloc.get_traced_memory()[0]
    try:
        asyncio.run(_crowd(variant, doms, probe if measure_memory else None, stats))
    finally:
        if measure_memory:
            tracemalloc.stop()
    for d in doms:
        assert d.jobs_queued == 0 and d.refs == 1
    return stats


def test_10000_coroutines_on_100_domains(benchmark: Any, settings: Any) -> None:
    benchmark.group = "aio-crowd"
    rounds = 1 if settings.quick else 5
    runs: Dict[str, List[Dict[str, Any]]] = {"notifier": [], "to_thread": []}

    def baseline() -> None:
        runs["to_thread"].append(_crowd_run("to_thread"))

    def subject() -> None:
        runs["notifier"].append(_crowd_run("notifier"))

    benchmark.pedantic(subject, setup=baseline, rounds=rounds, iterations=1,
                       warmup_rounds=0)
    mem = {v: _crowd_run(v, measure_memory=True) for v in runs}

    info = benchmark.extra_info
    info["waiters"], info["domains"] = N_WAITERS, N_DOMAINS
    for v, rs in runs.items():
        total = statistics.median(r["total_s"] for r in rs)
        drain = statistics.median(r["drain_s"] for r in rs)
        info[f"{v}_total_s_median"] = round(total, 4)
        info[f"{v}_jobs_per_s"] = round(N_WAITERS / total)
        info[f"{v}_drain_jobs_per_s"] = round(N_WAITERS / drain)
        info[f"{v}_extra_threads"] = max(r["extra_threads"] for r in rs)
        info[f"{v}_py_bytes_per_waiter"] = round(mem[v]["py_delta"] / N_WAITERS)
        info[f"{v}_rss_bytes_per_waiter"] = round(mem[v]["rss_delta"] / N_WAITERS)
    info["throughput_notifier_over_to_thread"] = round(
        info["notifier_jobs_per_s"] / info["to_thread_jobs_per_s"], 2)
    info["loadavg"] = os.getloadavg()
    assert info["notifier_extra_threads"] == 0


# ---- the uncontended path ---------------------------------------------------------


def _drive(coro: Any) -> None:
    try:
        coro.send(None)
    except StopIteration:
        return
    raise AssertionError("an uncontended begin_job_async suspended")


def test_uncontended(benchmark: Any, settings: Any) -> None:
    """pedantic times ``await begin_job_async`` + ``end_job`` (the coroutine
    driven by hand, so no loop cost is counted); its setup runs the same
    number of blocking ``begin_job`` + ``end_job`` pairs.  Thread CPU time per
    pair is recorded too, which a busy machine skews less than wall time."""
    benchmark.group = "aio-uncontended"
    dom = mj.Driver().add_domain("free")
    k = 2_000 if settings.quick else 20_000
    begin, end = dom.begin_job, dom.end_job
    begin_async = dom.begin_job_async
    cpu: Dict[str, List[int]] = {"begin_job": [], "begin_job_async": []}

    def sync_round() -> None:
        t = time.thread_time_ns()
        for _ in range(k):
            begin(J.QUERY)
            end()
        cpu["begin_job"].append(time.thread_time_ns() - t)

    def async_round() -> None:
        t = time.thread_time_ns()
        for _ in range(k):
            _drive(begin_async(J.QUERY))
            end()
        cpu["begin_job_async"].append(time.thread_time_ns() - t)

    benchmark.pedantic(async_round, setup=sync_round, rounds=5 if settings.quick else 20,
                       iterations=1, warmup_rounds=1)
    info = benchmark.extra_info
    info["pairs_per_round"] = k
    for name, xs in cpu.items():
        info[f"{name}_cpu_ns_per_pair_median"] = round(statistics.median(xs) / k)
    info["async_over_sync_cpu"] = round(
        info["begin_job_async_cpu_ns_per_pair_median"] / info["begin_job_cpu_ns_per_pair_median"], 2)
    info["begin_job_async_wall_ns_per_pair_median"] = round(benchmark.stats.stats.median / k * 1e9)
    info["loadavg"] = os.getloadavg()
    assert dom.jobs_queued == 0 and dom.refs == 1
