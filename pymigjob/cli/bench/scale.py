"""4. scale: bytes per domain and random-access throughput with 100 000
domains, each measurement in a fresh process."""

from __future__ import annotations

import gc
import json
import os
import random
import subprocess
import sys
import time
from typing import Any, Dict, Optional, Sequence

from .common import TARGETS, impl_by_name, load_pure, loadavg, median, min_round_time

# ---------------------------------------------------------------------------
# 4. scale


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _random_access(impl: Any, drv: Any, names: Sequence[str], round_time: float,
                   rounds: int) -> float:
    """Median ops/s of lookup(name) + begin_job + end_job on random names."""
    rng = random.Random(7)
    idx = [names[rng.randrange(len(names))] for _ in range(1 << 16)]
    J = impl.Job.QUERY
    lookup = drv.lookup

    def loop(n: int) -> float:
        t0 = time.perf_counter()
        for j in range(n):
            dom = lookup(idx[j & 0xFFFF])
            dom.begin_job(J)
            dom.end_job()
        return time.perf_counter() - t0

    n = 1000
    while loop(n) < round_time / 4:
        n *= 2
    n *= 4
    return median([n / loop(n) for _ in range(rounds)])


def scale_child(impl_name: str, n: int, mode: str, round_time: float = 0.1,
                rounds: int = 3) -> Dict[str, Any]:
    """Run in a fresh process: bytes per domain for `n` domains, measured as
    the RSS delta (mode "rss", plus random-access throughput) or with
    tracemalloc (mode "tracemalloc": what Python objects hold)."""
    impl = impl_by_name(impl_name)
    import tracemalloc

    names = [f"vm{i:06d}" for i in range(n)]   # the caller's strings: not counted
    drv = impl.Driver()
    warm = drv.add_domain("warm-up")
    warm.begin_job(impl.Job.QUERY)
    warm.end_job()
    gc.collect()
    res: Dict[str, Any] = {"impl": impl_name, "n": n, "mode": mode}
    if mode == "tracemalloc":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    rss0 = _rss_bytes()
    t0 = time.perf_counter()
    for name in names:
        drv.add_domain(name)
    res["create_s"] = time.perf_counter() - t0
    gc.collect()
    if mode == "tracemalloc":
        res["py_bytes_per_domain"] = (tracemalloc.get_traced_memory()[0] - before) / n
        tracemalloc.stop()
    else:
        res["rss_bytes_per_domain"] = (_rss_bytes() - rss0) / n
        res["access_ops_per_s"] = _random_access(impl, drv, names, round_time, rounds)
        small = impl.Driver()
        small_names = [f"s{i}" for i in range(10)]
        for name in small_names:
            small.add_domain(name)
        res["access10_ops_per_s"] = _random_access(impl, small, small_names,
                                                   round_time, rounds)
    return res


def _spawn_scale(impl_name: str, n: int, mode: str, round_time: float,
                 rounds: int) -> Dict[str, Any]:
    code = ("import json, sys; from pymigjob.cli.bench.scale import scale_child; "
            "print(json.dumps(scale_child(sys.argv[1], int(sys.argv[2]), sys.argv[3], "
            "float(sys.argv[4]), int(sys.argv[5]))))")
    out = subprocess.run([sys.executable, "-c", code, impl_name, str(n), mode,
                          str(round_time), str(rounds)],
                         capture_output=True, text=True, timeout=600)
    if out.returncode:
        raise RuntimeError(f"scale child ({impl_name}, {mode}) failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def scale_compare(n: int = 100_000, round_time: Optional[float] = None,
                  rounds: int = 3) -> Dict[str, Any]:
    rt = max(round_time or 0.0, min_round_time())
    pure, why = load_pure()
    impls = ["pymigjob"] + (["pure"] if pure is not None else [])
    load_before = loadavg()
    per: Dict[str, Dict[str, Any]] = {}
    for name in impls:
        rss = _spawn_scale(name, n, "rss", rt, rounds)
        tm = _spawn_scale(name, n, "tracemalloc", rt, rounds)
        per[name] = {
            "rss_bytes_per_domain": rss["rss_bytes_per_domain"],
            "py_bytes_per_domain": tm["py_bytes_per_domain"],
            "native_bytes_per_domain": rss["rss_bytes_per_domain"] - tm["py_bytes_per_domain"],
            "create_us_per_domain": rss["create_s"] / n * 1e6,
            "access_ops_per_s": rss["access_ops_per_s"],
            "access10_ops_per_s": rss["access10_ops_per_s"],
            "access_vs_10": rss["access_ops_per_s"] / rss["access10_ops_per_s"],
        }
    res: Dict[str, Any] = {"n": n, "impls": per, "ratios": {},
                           "loadavg": {"before": load_before, "after": loadavg()},
                           "pure": "measured" if pure is not None else why, "checks": []}
    mj = per["pymigjob"]
    res["ratios"]["pymigjob access: 100k/10 domains"] = round(mj["access_vs_10"], 3)
    if "pure" in per:
        p = per["pure"]
        res["ratios"]["memory pymigjob/pure (RSS)"] = round(
            mj["rss_bytes_per_domain"] / p["rss_bytes_per_domain"], 3)
        res["ratios"]["memory pymigjob/pure (python)"] = round(
            mj["py_bytes_per_domain"] / p["py_bytes_per_domain"], 3)
        res["ratios"]["access pymigjob/pure"] = round(
            mj["access_ops_per_s"] / p["access_ops_per_s"], 3)
        res["checks"].append(TARGETS["memory/pure"].check(
            res["ratios"]["memory pymigjob/pure (RSS)"]))
    else:
        res["checks"].append(TARGETS["memory/pure"].check(None))
    return res


