"""A kill at every phase, on real processes: two daemons, SIGKILLed at each
step boundary of the v3 protocol and at random instants inside Perform3,
restarted, recovered; then the real QEMUs are checked (no guest on both
hosts, none lost, none left paused unless a decision says so, every QEMU
owned, records matching).  PYMIGJOB_KILLS sets how many (.ci/qemu.sh: in
the hundreds); by default one pass over every point."""

from __future__ import annotations

from _qemu_skip import require_qemu

require_qemu()

import os
import time
from collections import Counter
from pathlib import Path

import pytest
from _qemu_helpers import run
from pymigjob.cli.qemu_cluster import Cluster, qemu_pids_under
from pymigjob.cli.qemu_crash import RANDOM_POINTS, run_kills
from pymigjob.qemu.crashpoints import POINTS

KILLS = int(os.environ.get("PYMIGJOB_KILLS", len(POINTS) + 2 * len(RANDOM_POINTS)))


def _progress(kill) -> None:
    """A line per failed kill, and one per pass over the points."""
    if not kill.verdict.ok or not kill.hit:
        print(f"\n{kill}", flush=True)
    elif kill.n % (len(POINTS) + 2 * len(RANDOM_POINTS)) == 0:
        print(f"\n  {kill.n} kills so far, invariants held", flush=True)


@pytest.mark.timeout(60 + 3 * KILLS)
def test_kill_at_every_phase(state_root):
    kills = []

    async def scenario():
        cluster = await Cluster(Path(state_root)).start()
        try:
            kills.extend(await run_kills(cluster, ["vm0", "vm1"], KILLS, seed=12,
                                         report=_progress))
        finally:
            await cluster.stop()
        assert qemu_pids_under(Path(state_root)) == set()   # teardown left nothing

    t0 = time.monotonic()
    run(scenario(), timeout=60 + 3 * KILLS)
    took = time.monotonic() - t0
    failed = [str(k) for k in kills if not k.verdict.ok]
    assert not failed, "\n".join(failed)
    assert len(kills) == KILLS
    hit = Counter(k.point for k in kills if k.hit)
    if KILLS >= len(POINTS) + len(RANDOM_POINTS):
        assert set(hit) == set(POINTS) | set(RANDOM_POINTS), hit
    assert sum(hit.values()) == KILLS, [str(k) for k in kills if not k.hit]
    print(f"{KILLS} kills in {took:.0f} s ({took / KILLS:.2f} s per kill)")
