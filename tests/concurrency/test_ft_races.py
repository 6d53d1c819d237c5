"""Shared Python-level structures under threads, without the GIL (issue 11).

Each test hammers one structure that several threads share -- the driver's
domain list, the API-name encoding cache, a domain's reused quick guards,
the asyncio notifiers, the persistence tracker's counters and DESTROY set,
the pure twin's state -- and checks an invariant that a lost update or a
torn structure would break.  On a GIL build they pass trivially most of the
time; on free-threaded 3.14t with PYTHON_GIL=0 the ones marked "fixed" failed
before their fix (run them many times: ``pytest tests/test_ft_races.py
--count``-style loops in .ci/freethreaded.sh).

Both implementations: the module-level ``mj`` is whatever PYMIGJOB_IMPL
selects; the pure twin is also exercised directly where it has its own
structure.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

import pymigjob as mj
import pymigjob.pure as pure
from pymigjob.store import MemoryStore

pytestmark = [pytest.mark.concurrency, pytest.mark.timeout(300)]

J = mj.Job
A = mj.AsyncJob
#: threads per test: more than the cores, so that they interleave
THREADS = int(os.environ.get("MJ_RACE_THREADS", "4"))
#: repetitions of the inner loops; CI's 3.14t step raises it
SCALE = float(os.environ.get("MJ_RACE_SCALE", "1"))


def n(base: int) -> int:
    return max(1, int(base * SCALE))


def run_threads(target, count: int = THREADS, args=()) -> list:
    """Start `count` threads at once (a barrier), join them, re-raise the
    first exception; returns their results in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i, *args)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a hammering thread is stuck"
    if errors:
        raise errors[0]
    return results


# ---- persistence tracker (pymigjob/persist/tracker.py) -- fixed ------------------------------

class CountingStore:
    """A store that counts its writes per thread (no lock on the write
    path, so that the tracker's writes from different domains really run
    at the same time; a locked store would serialise them)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._counters: list = []
        self._lock = threading.Lock()

    def save(self, name, status) -> None:
        counter = getattr(self._local, "counter", None)
        if counter is None:
            counter = self._local.counter = [0]
            with self._lock:
                self._counters.append(counter)
        counter[0] += 1

    def load_all(self) -> dict:
        return {}

    def delete(self, name) -> None:
        pass

    @property
    def saves(self) -> int:
        with self._lock:
            return sum(c[0] for c in self._counters)


@pytest.mark.parametrize("impl", ["c", "pure"])
def test_tracker_counts_every_save(impl):
    """Tracker.saves is incremented under per-domain locks, i.e. from
    several threads at once: `self.saves += 1` lost updates (fixed: under
    its own lock).  The store counts every write per thread: the two
    counts must agree."""
    lib = mj if impl == "c" else pure
    store = CountingStore()
    drv = lib.Driver(store=store)
    doms = [drv.add_domain(f"vm{i}") for i in range(THREADS)]

    def hammer(i: int) -> None:
        dom = doms[i]
        for _ in range(n(5000)):
            dom.begin_job(J.DESTROY)   # a tracked change: DESTROY recorded
            dom.end_job()              # and its end: idle recorded

    run_threads(hammer)
    assert store.saves == 2 * n(5000) * THREADS
    assert drv._tracker.saves == store.saves


@pytest.mark.parametrize("impl", ["c", "pure"])
def test_tracker_removal_while_destroy_jobs_change(impl):
    """remove_domain -> Tracker.removed iterated the `destroying` set while
    other threads' DESTROY begins and ends added to it and discarded from
    it: "RuntimeError: Set changed size during iteration" out of
    remove_domain (fixed: it iterates a copy)."""
    lib = mj if impl == "c" else pure
    drv = lib.Driver(store=MemoryStore())
    doms = [drv.add_domain(f"vm{i}") for i in range(THREADS - 1)]
    stop = threading.Event()

    def worker(i: int) -> int:
        if i == THREADS - 1:   # the remover
            removed = 0
            try:
                for k in range(n(3000)):
                    drv.add_domain("victim")
                    drv.remove_domain("victim")
                    removed += 1
            finally:
                stop.set()
            return removed
        dom = doms[i]
        while not stop.is_set():
            dom.begin_job(J.DESTROY)
            dom.end_job()
        return 0

    assert run_threads(worker)[-1] == n(3000)
    assert drv._tracker.destroying == set()


# ---- the API-name encoding cache (pymigjob/_args.py) -- fixed ------------------------

def test_api_name_cache_under_threads():
    """api_bytes(name) caches the checked encodings of API names.  It was a
    functools.lru_cache: thread-safe on 3.14t (a lock inside), but that lock
    is taken on every call by every thread, so begin+end with an API name
    did not scale; it is a plain dict now, read without a lock, filled
    without one -- on free-threaded builds one dict per thread, so that no
    bytes object is handed to two threads (each would change its reference
    count on every call).  Its invariants under threads: every answer is
    the right encoding (never another name's), refusals are never cached,
    the cache stays bounded (API_CACHE_MAX; shared, plus at most one entry
    per thread that raced past the size check), and on free-threaded builds
    no two threads were handed the same bytes object for a name."""
    from pymigjob import _args

    names = [f"api{i}" for i in range(3 * _args.API_CACHE_MAX)]
    common = ["setMemory", "getInfo", "migratePerform3", "é" * 10]

    def hammer(i: int) -> tuple:
        checked = 0
        for k in range(n(20000)):
            name = common[k % len(common)] if k % 3 else names[(k * 7 + i * 131) % len(names)]
            got = _args.api_bytes(name)
            assert got == name.encode("utf-8"), (name, got)
            checked += 1
            if k % 97 == 0:
                with pytest.raises(ValueError):
                    _args.api_bytes("bad\0name")
        cache = _args.api_cache()
        # the thread's cache as it is now, and the very objects it hands out
        return checked, id(cache), dict(cache), [id(_args.api_bytes(c)) for c in common]

    results = run_threads(hammer)
    assert sum(r[0] for r in results) == THREADS * n(20000)
    caches = [r[2] for r in results]
    if _args._PER_THREAD:
        assert len({r[1] for r in results}) == THREADS, "two threads shared a cache"
        assert all(len(c) <= _args.API_CACHE_MAX for c in caches)
        for k in range(len(common)):
            assert len({r[3][k] for r in results}) == THREADS, "a bytes object was shared"
        assert _args._API_CACHE == {}
    else:
        caches = [_args._API_CACHE]
        assert len(caches[0]) <= _args.API_CACHE_MAX + THREADS
    for cache in caches:
        assert all(v == k.encode("utf-8") for k, v in cache.items())
        assert "bad\0name" not in cache


def test_begin_with_api_names_under_threads(drv):
    """Begin+end with API names from several threads on their own domains:
    each job names its own API (the encoding one thread asked for, never
    another's)."""
    doms = [drv.add_domain(f"vm{i}") for i in range(THREADS)]

    def hammer(i: int) -> None:
        dom = doms[i]
        for k in range(n(3000)):
            api = f"api-{i}-{k % 50}"
            dom.begin_job(J.QUERY, api=api)
            assert dom.owner_api == api
            dom.end_job()

    run_threads(hammer)
    assert all(d.refs == 1 and d.active_job == J.NONE for d in doms)


# ---- the domain list (pymigjob/_driver_base.py) -- safe: one lock -------------------------

@pytest.mark.parametrize("impl", ["c", "pure"])
def test_domain_list_under_threads(impl):
    """add_domain / lookup / remove_domain / domains() from every thread on
    shared names: exactly one add of a name succeeds while it is listed,
    lookups see the one listed handle, and the list ends consistent."""
    lib = mj if impl == "c" else pure
    drv = lib.Driver()
    names = [f"vm{i}" for i in range(8)]
    counts = {"added": 0, "removed": 0}
    lock = threading.Lock()

    def hammer(i: int) -> None:
        added = removed = 0
        for k in range(n(4000)):
            name = names[(k + i) % len(names)]
            op = (k * (i + 3)) % 4
            try:
                if op == 0:
                    drv.add_domain(name)
                    added += 1
                elif op == 1:
                    drv.remove_domain(name)
                    removed += 1
                elif op == 2:
                    assert drv.lookup(name).name == name
                else:
                    listed = drv.domains()
                    assert len(listed) == len(set(listed)) <= len(names)
            except (mj.NoDomain, mj.OperationFailed):
                pass
        with lock:
            counts["added"] += added
            counts["removed"] += removed

    run_threads(hammer)
    assert counts["added"] - counts["removed"] == len(drv.domains())
    for name in drv.domains():
        assert drv.lookup(name) is drv.lookup(name)
        assert drv.lookup(name).refs == 1


# ---- a domain's reused quick guards (pymigjob/domain.py) -- harmless race -----------------

@pytest.mark.c_core
def test_quick_guards_first_use_from_many_threads(drv):
    """`with dom.job(kind)` (no api, no timeout) reuses one stateless guard
    per domain and kind, created lazily by check-then-set without a lock:
    two threads may each create the dict or the guard, and one of the two
    is dropped.  Harmless by construction -- the guards hold no state, so
    either one begins and ends the same job -- and this checks it: many
    threads making first use of fresh domains, every job begun and ended
    exactly once."""
    for _ in range(n(200)):
        dom = drv.add_domain("vm-fresh")
        done = [0] * THREADS

        def use(i: int) -> None:
            for _ in range(20):
                with dom.job(J.QUERY):
                    assert dom.active_job == J.QUERY
                    done[i] += 1

        run_threads(use)
        assert sum(done) == 20 * THREADS
        assert dom.refs == 1 and dom.jobs_queued == 0 and dom.active_job == J.NONE
        drv.remove_domain("vm-fresh")


@pytest.mark.c_core
def test_quick_begin_table_under_threads(drv):
    """begin_job picks its one-argument C begin from a tuple indexed by the
    kind's int (pymigjob/_c/domain.py _QUICK_JOBS; on free-threaded builds a
    dict lookup's result would be a reference count every thread changes).
    From many threads on their own and on a shared domain, members and
    plain ints of every kind: each begins exactly its own kind, the
    refusals stay refusals (a bool, NONE, a value out of range), and the
    counts come back."""
    own = [drv.add_domain(f"vm-own{i}") for i in range(THREADS)]
    shared = drv.add_domain("vm-shared")
    kinds = [J.QUERY, J.DESTROY, J.SUSPEND, J.MODIFY, J.ABORT, J.MIGRATION_OP,
             J.MODIFY_MIGRATION_SAFE]

    def hammer(i: int) -> int:
        done = 0
        for k in range(n(3000)):
            kind = kinds[(k + i) % len(kinds)]
            dom = own[i] if k % 3 else shared
            dom.begin_job(kind if k % 2 else int(kind), timeout=60 if dom is shared else None)
            assert dom.active_job == kind and dom.owner_thread == threading.get_ident()
            dom.end_job()
            done += 1
            if k % 101 == 0:
                with pytest.raises(TypeError):
                    own[i].begin_job(True)
                with pytest.raises(mj.InternalError):
                    own[i].begin_job(J.NONE)
                with pytest.raises(mj.InvalidArgument):
                    own[i].begin_job(len(J) + 5)
        return done

    assert sum(run_threads(hammer)) == THREADS * n(3000)
    assert all(d.refs == 1 and d.jobs_queued == 0 and d.active_job == J.NONE
               for d in own + [shared])


# ---- asyncio notifiers (pymigjob/aio.py _notifiers) -- safe: atomic dict + one lock ------

@pytest.mark.c_core
def test_notifiers_one_per_loop_from_many_threads(drv):
    """Each thread runs its own event loop whose coroutines contend on
    shared domains, so every loop creates, uses and releases its notifier
    while the others do the same: each loop has exactly its own notifier,
    every waiter is served, and every notifier is gone afterwards."""
    from pymigjob import aio

    doms = [drv.add_domain(f"vm{i}") for i in range(2)]
    loops: list[int] = []
    old_idle = aio.NOTIFIER_IDLE
    aio.NOTIFIER_IDLE = 0.0      # release at once: create/release as often as possible

    def loop_thread(i: int) -> int:
        async def one(k: int) -> None:
            dom = doms[(k + i) % len(doms)]
            async with dom.job_async(J.MODIFY, timeout=60):
                await asyncio.sleep(0)

        async def main() -> int:
            served = 0
            loop = asyncio.get_running_loop()
            loops.append(id(loop))
            for _ in range(n(40)):
                await asyncio.gather(*(one(k) for k in range(8)))
                served += 8
                note = aio._notifiers.get(id(loop))
                assert note is None or note.loop is loop
            return served

        return asyncio.run(main())

    try:
        assert sum(run_threads(loop_thread)) == THREADS * n(40) * 8
    finally:
        aio.NOTIFIER_IDLE = old_idle
    # this test's loops only: an earlier test's loop may not be collected yet
    assert not set(loops) & set(aio._notifiers.keys())
    assert all(d.refs == 1 and d.jobs_queued == 0 for d in doms)


# ---- the pure twin's state (pymigjob/pure/) -- safe: one lock per domain -----------------

def test_pure_twin_counts_under_threads():
    """The pure twin keeps refs, jobs_queued and the queue under the
    domain's lock; its lock-free property reads read one attribute each.
    Shared domains, every kind of begin and end from every thread: the
    counts come back exactly."""
    drv = pure.Driver(job_wait_timeout=60)
    doms = [drv.add_domain(f"vm{i}") for i in range(2)]
    PJ = pure.Job

    def hammer(i: int) -> None:
        for k in range(n(1500)):
            dom = doms[k % 2]
            if k % 5 == 0:
                dom.ref()
                assert dom.refs >= 2
                dom.unref()
            with dom.job(PJ.MODIFY if k % 2 else PJ.QUERY):
                assert dom.owner_thread == threading.get_ident()
            assert dom.jobs_queued >= 0

    run_threads(hammer)
    assert all(d.refs == 1 and d.jobs_queued == 0 and d.active_job == PJ.NONE for d in doms)


def test_gil_state_reported():
    """Says under which conditions the other tests ran (for the CI log)."""
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(f"GIL enabled: {gil}; threads: {THREADS}; scale: {SCALE}")
