"""3. the daemon mix: many domains, a pool of workers, migrations running
through their phases among queries, modifies, aborts and destroys; every
grant checked against the async job's mask."""

from __future__ import annotations

import queue
import random
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from .common import impl_by_name, load_c, load_pure, loadavg, median, min_round_time

# ---------------------------------------------------------------------------
# 3. daemon mix


class _NullGuard:
    """Stands in for every guard in the no-lock ceiling run."""

    def __enter__(self) -> "_NullGuard":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def set_phase(self, phase: int, api: Optional[str] = None) -> bool:
        return True

    def finish(self) -> int:
        return 1


class _NoLockDomain:
    """The same calls, no locking at all: the ceiling of the mix."""

    _g = _NullGuard()
    async_job = 0
    mask = 0
    refs = 1
    active_job = 0
    jobs_queued = 0

    def job(self, *a: Any, **k: Any) -> _NullGuard:
        return self._g

    nested_job = migration = migration_phase = job

    def abort_job(self, *a: Any, **k: Any) -> None:
        return None

    def check_abort(self) -> None:
        return None


MIX_WEIGHTS = (("query", 60), ("modify", 20), ("destroy", 5), ("abort", 5), ("migrate", 10))


def daemon_mix(variant: str, *, ndomains: int = 32, nworkers: int = 8,
               duration: float = 1.0, hold: float = 0.0002, perform_polls: int = 8,
               transfer: float = 0.001, client_timeout: float = 0.005,
               max_migrations: Optional[int] = None,
               seed: int = 1, impl: Any = None) -> Dict[str, Any]:
    """A daemon's day: `nworkers` threads serve random client calls on
    `ndomains` domains for `duration` seconds, while migrations (Begin3,
    Perform3 with monitor calls in nested jobs and the abort checkpoint,
    Confirm3) run through their phases on whichever worker is free.
    `variant`: "pymigjob", "pure", or "nolock" (same calls, no locking);
    `impl` overrides the module used for the variant (tests).

    Every granted sync job is checked at grant time: if an async job is
    active, its mask must allow the job ("violations" must stay 0)."""
    mix = _DaemonMix(variant, impl, ndomains, hold, perform_polls, transfer, client_timeout,
                     max_migrations if max_migrations is not None else max(1, ndomains // 4),
                     seed)
    return mix.run(nworkers, duration)


class _DaemonMix:
    """daemon_mix's state: the domains, the migrations in flight and the
    steps waiting for a worker, each worker's counts."""

    LONG_TIMEOUT = 10.0

    def __init__(self, variant: str, impl: Any, ndomains: int, hold: float,
                 perform_polls: int, transfer: float, client_timeout: float,
                 max_migrations: int, seed: int) -> None:
        self.variant = variant
        self.locking = locking = variant != "nolock"
        if locking:
            impl = impl if impl is not None else impl_by_name(variant)
            drv = impl.Driver(job_wait_timeout=30.0)
            self.doms: List[Any] = [drv.add_domain(f"mix{i:03d}") for i in range(ndomains)]
            self.JobTimeout = getattr(impl, "JobTimeout", TimeoutError)
            self.OperationAborted = impl.OperationAborted
            self.OperationInvalid = impl.OperationInvalid
            self.bit = {j: impl.job_mask(j) for j in impl.Job}
        else:
            impl = load_c()
            self.doms = [_NoLockDomain() for _ in range(ndomains)]
            never = type("_Never", (Exception,), {})
            self.JobTimeout = self.OperationAborted = self.OperationInvalid = never
            self.bit = {j: 0 for j in impl.Job}
        Job = impl.Job
        self.Phase, self.MO = impl.Phase, impl.AsyncJob.MIGRATION_OUT
        self.out_mask = impl.job_mask(Job.QUERY, Job.DESTROY, Job.ABORT, Job.SUSPEND,
                                      Job.MIGRATION_OP)
        self.kind_of = {"query": Job.QUERY, "modify": Job.MODIFY, "destroy": Job.DESTROY}
        self.bit_out = {j: impl.job_mask(j) for j in Job}
        self.names, self.weights = zip(*MIX_WEIGHTS)
        self.ndomains, self.hold, self.perform_polls = ndomains, hold, perform_polls
        self.transfer, self.client_timeout = transfer, client_timeout
        self.max_mig, self.seed = max_migrations, seed
        self.state = threading.Lock()
        self.migrating = [False] * ndomains
        self.inflight = 0
        self.steps: "queue.SimpleQueue[Tuple[int, str]]" = queue.SimpleQueue()
        self.deadline = 0.0
        self.stats: List[Dict[str, int]] = []
        self.errors: List[BaseException] = []

    def run(self, nworkers: int, duration: float) -> Dict[str, Any]:
        load_before = loadavg()
        threads = [threading.Thread(target=self.worker, args=(w,), daemon=True,
                                    name=f"mix-{w}") for w in range(nworkers)]
        t0 = time.perf_counter()
        self.deadline = t0 + duration
        for t in threads:
            t.start()
        for t in threads:
            t.join(duration + 60)
        elapsed = time.perf_counter() - t0
        if self.errors:
            raise RuntimeError(f"daemon mix ({self.variant}) worker failed: "
                               f"{self.errors[0]!r}") from self.errors[0]
        if any(t.is_alive() for t in threads):
            raise RuntimeError(f"daemon mix ({self.variant}) hung")
        total: Dict[str, int] = {}
        for c in self.stats:
            for k, v in c.items():
                total[k] = total.get(k, 0) + v
        return {
            "variant": self.variant, "domains": self.ndomains, "workers": nworkers,
            "duration_s": duration, "elapsed_s": elapsed, "hold_ms": self.hold * 1e3,
            "counts": dict(sorted(total.items())),
            "granted_per_s": total.get("granted", 0) / elapsed,
            "allowed_while_migrating_per_s":
                total.get("allowed_while_migrating", 0) / elapsed,
            "migrations_per_s": total.get("migrations.completed", 0) / elapsed,
            "violations": total.get("violations", 0),
            "leaks": self.leaks(),
            "loadavg": {"before": load_before, "after": loadavg()},
        }

    def leaks(self) -> List[str]:
        if not self.locking:
            return []
        return [f"{d.name}: refs={d.refs} active={d.active_job!r} "
                f"async={d.async_job!r} queued={d.jobs_queued}"
                for d in self.doms
                if (d.refs, d.active_job, d.async_job, d.jobs_queued) != (1, 0, 0, 0)]

    def mig_done(self, i: int) -> None:
        with self.state:
            self.migrating[i] = False
            self.inflight -= 1

    def worker(self, wid: int) -> None:
        rng = random.Random(self.seed * 1000 + wid)
        c: Dict[str, int] = {}
        self.stats.append(c)
        try:
            while self.serve_one(rng, c):
                pass
        except BaseException as e:
            self.errors.append(e)
            with self.state:  # never leave the others draining forever
                self.inflight = -(10**9)

    def serve_one(self, rng: random.Random, c: Dict[str, int]) -> bool:
        """One step of a migration, else one random client call; False when
        the time is up and no migration is left in flight."""
        try:
            i, step = self.steps.get_nowait()
        except queue.Empty:
            pass
        else:
            self.run_step(c, i, step)
            return True
        if time.perf_counter() >= self.deadline:
            with self.state:
                if not self.inflight:
                    return False
            time.sleep(self.hold)  # let the last migrations drain
            return True
        i = rng.randrange(self.ndomains)
        what = rng.choices(self.names, self.weights)[0]
        if what == "migrate":
            with self.state:
                start = not self.migrating[i] and self.inflight < self.max_mig
                if start:
                    self.migrating[i] = True
                    self.inflight += 1
            if start:
                _count(c, "migrations.started")
                self.run_step(c, i, "begin")
                return True
            what = "query"
        if what == "abort":
            self.abort(c, i)
        else:
            self.client_job(c, i, what)
        return True

    def client_job(self, c: Dict[str, int], i: int, kind: str) -> None:
        dom = self.doms[i]
        job = self.kind_of[kind]
        try:
            with dom.job(job, api=kind, timeout=self.client_timeout):
                # checked at grant time: no async job can start while we
                # hold the sync job, and its mask only changes when it starts
                during = bool(dom.async_job) if self.locking else self.migrating[i]
                if during and self.locking and not (dom.mask & self.bit[job]):
                    _count(c, "violations")
                time.sleep(self.hold)
        except self.JobTimeout:
            _count(c, f"{kind}.timeout")
            return
        _count(c, f"{kind}.granted")
        _count(c, "granted")
        if during:
            _count(c, f"{kind}.granted_while_migrating")
            if self.out_mask & self.bit_out[job]:
                _count(c, "allowed_while_migrating")

    def abort(self, c: Dict[str, int], i: int) -> None:
        try:
            self.doms[i].abort_job(api="abort", timeout=self.client_timeout)
        except self.OperationInvalid:
            _count(c, "abort.no_job")
        except self.JobTimeout:
            _count(c, "abort.timeout")
        else:  # granted, and there was an async job to abort
            _count(c, "abort.granted")
            _count(c, "granted")
            _count(c, "allowed_while_migrating")

    def run_step(self, c: Dict[str, int], i: int, step: str) -> None:
        dom, MO, Phase, hold = self.doms[i], self.MO, self.Phase, self.hold
        wait = self.LONG_TIMEOUT
        if step == "begin":
            with dom.migration(MO, Phase.BEGIN3, api="begin3", timeout=wait):
                with dom.nested_job(MO, timeout=wait):
                    time.sleep(hold)
            _count(c, "phase.begin3")
            self.steps.put((i, "perform"))
        elif step == "perform":
            try:
                with dom.migration_phase(MO, Phase.PERFORM3, api="perform3") as mig:
                    for _ in range(self.perform_polls):
                        dom.check_abort()
                        with dom.nested_job(MO, timeout=wait):
                            time.sleep(hold)     # query-migrate
                        time.sleep(self.transfer)  # the transfer goes on
                    mig.set_phase(Phase.PERFORM3_DONE)
            except self.OperationAborted:
                _count(c, "migrations.aborted")
                self.mig_done(i)
                return
            _count(c, "phase.perform3")
            self.steps.put((i, "confirm"))
        else:
            with dom.migration_phase(MO, Phase.CONFIRM3, api="confirm3") as mig:
                with dom.nested_job(MO, timeout=wait):
                    time.sleep(hold)
                mig.finish()
            _count(c, "migrations.completed")
            self.mig_done(i)


def _count(c: Dict[str, int], key: str, n: int = 1) -> None:
    c[key] = c.get(key, 0) + n


def _merge_mix(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Several rounds of one variant: rates are medians, counts are sums."""
    out = dict(runs[0])
    counts: Dict[str, int] = {}
    for r in runs:
        for k, v in r["counts"].items():
            counts[k] = counts.get(k, 0) + v
    out["counts"] = dict(sorted(counts.items()))
    for k in ("granted_per_s", "allowed_while_migrating_per_s", "migrations_per_s"):
        out[k] = median([r[k] for r in runs])
    out["elapsed_s"] = sum(r["elapsed_s"] for r in runs)
    out["violations"] = sum(r["violations"] for r in runs)
    out["leaks"] = [x for r in runs for x in r["leaks"]]
    out["rounds"] = len(runs)
    out["loadavg"] = {"before": runs[0]["loadavg"]["before"],
                      "after": runs[-1]["loadavg"]["after"]}
    return out


class MixBench:
    """The daemon mix for pymigjob and, interleaved round by round, the pure
    twin and the no-lock ceiling."""

    def __init__(self, duration: float = 1.0, **kw: Any) -> None:
        pure, self.pure_why = load_pure()
        self.duration = max(duration, min_round_time())
        self.kw = kw
        self.variants = ["pymigjob", "nolock"] + (["pure"] if pure is not None else [])
        self.runs: Dict[str, List[Dict[str, Any]]] = {v: [] for v in self.variants}
        self._turn = 0

    def _run(self, v: str) -> None:
        self.runs[v].append(daemon_mix(v, duration=self.duration,
                                       seed=len(self.runs[v]) + 1, **self.kw))

    def subject_round(self) -> None:
        self._run("pymigjob")

    def baseline_round(self) -> None:
        others = self.variants[1:]
        self._turn += 1
        for i in range(len(others)):
            self._run(others[(i + self._turn) % len(others)])

    def run(self, rounds: int) -> Dict[str, Any]:
        for _ in range(rounds):
            self.baseline_round()
            self.subject_round()
        return self.result()

    def result(self) -> Dict[str, Any]:
        return mix_summary({v: _merge_mix(rs) for v, rs in self.runs.items() if rs})


def mix_compare(duration: float, rounds: int = 1, **kw: Any) -> Dict[str, Any]:
    """pymigjob, the pure twin (if present) and the no-lock ceiling."""
    return MixBench(duration, **kw).run(rounds)


def mix_summary(runs: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    pure, why = load_pure()
    mj = runs["pymigjob"]
    ratios = {
        # (allowed-while-migrating is not compared with nolock: without a lock
        # "migrating" can only be the harness's own, wider, flag)
        "pymigjob/nolock granted": mj["granted_per_s"] / runs["nolock"]["granted_per_s"],
    }
    if "pure" in runs:
        p = runs["pure"]
        ratios["pymigjob/pure granted"] = mj["granted_per_s"] / p["granted_per_s"]
        if p["allowed_while_migrating_per_s"]:
            ratios["pymigjob/pure allowed while migrating"] = (
                mj["allowed_while_migrating_per_s"] / p["allowed_while_migrating_per_s"])
    order = [v for v in ("nolock", "pymigjob", "pure") if v in runs]
    return {"runs": {v: runs[v] for v in order},
            "ratios": {k: round(v, 3) for k, v in ratios.items()},
            "pure": "measured" if "pure" in runs else why, "checks": []}


