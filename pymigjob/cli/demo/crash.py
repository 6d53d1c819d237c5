"""``python -m pymigjob demo --crash-recover``: crash the demo, then recover.

The demo runs in a child process whose source and destination drivers keep
their job status in state directories (``demo --state-dir DIR``, the child's
own hidden option).  This process watches the directories and, once some
migrations are in flight, kills the child with SIGKILL -- no cleanup of any
kind runs.  Then it opens a fresh driver on each directory, runs
``Driver.recover()`` and prints what libvirt 11 would do with each domain
(qemuProcessRecoverJob; the demo's migrations are pre-copy, so no facts are
given and no job is kept): kill it, resume it, cancel the migration, leave
it paused, or nothing -- and the state each driver is left in.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, TextIO

import pymigjob as mj

from pymigjob.persist.store import DirectoryStore

SIDES = (("src", "source"), ("dst", "destination"))


def _in_flight(state: str) -> Dict[str, mj.JobStatus]:
    """Non-idle records of both sides (read-only: the child may still be writing)."""
    busy: Dict[str, mj.JobStatus] = {}
    for sub, side in SIDES:
        path = os.path.join(state, sub)
        if not os.path.isdir(path):
            continue
        store = DirectoryStore(path)
        try:
            for name, st in store.load_all().items():
                if not st.idle:
                    busy[f"{side} {name}"] = st
        finally:
            store.close()
    return busy


def crash_and_recover(args: Any, out: TextIO) -> int:
    rng = random.Random(f"{args.seed}/crash")
    p = lambda line="": print(line, file=out)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="pymigjob-demo-") as state:
        argv = [sys.executable, "-m", "pymigjob", "demo", "--state-dir", state,
                "--seed", str(args.seed), "--domains", str(args.domains),
                "--threads", str(args.threads), "--timeout", str(args.timeout),
                "--watchdog", str(args.watchdog), "--quiet"]
        target = rng.randint(1, max(1, (args.domains + 1) // 2))
        p(f"pymigjob demo --crash-recover (seed {args.seed}): the demo runs in a child "
          f"process with its job status in {state}/{{src,dst}};")
        p(f"it is killed with SIGKILL once {target} migration job(s) are in flight, "
          "then both drivers are recovered here.")
        p()
        t0 = time.monotonic()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seen = 0
        try:
            while True:
                if child.poll() is not None:
                    err = child.stderr.read().decode(errors="replace") if child.stderr else ""
                    p(f"the demo ended (exit {child.returncode}) before the crash"
                      + (f":\n{err}" if err.strip() else "; nothing to recover"))
                    return 1
                seen = len(_in_flight(state))
                if seen >= target or time.monotonic() - t0 > args.watchdog:
                    break
                time.sleep(0.002)
            seen_at = time.monotonic()
            time.sleep(rng.uniform(0, 0.01))
            child.send_signal(signal.SIGKILL)
            child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            if child.stderr:
                child.stderr.close()
        killed_at = time.monotonic()
        # What was durable at the kill: the records on disk, read once the
        # child is dead (no write can land any more) -- exactly what the
        # recovery below reads.  The trigger's own look, taken up to 10 ms
        # before the kill, may be older: the child kept running meanwhile.
        busy = _in_flight(state)
        late = f"{(killed_at - seen_at) * 1e3:.0f} ms after {seen} job(s) were seen in flight"
        if child.returncode == -signal.SIGKILL:
            p(f"killed pid {child.pid} after {killed_at - t0:.2f} s (exit status "
              f"{child.returncode}), {late};")
        else:
            p(f"pid {child.pid} had ended by itself (exit status {child.returncode}) when "
              f"the kill came, {late};")
        p(f"{len(busy)} job(s) in flight at the kill (the records on disk after it, "
          "which recovery reads):")
        for what, st in sorted(busy.items()):
            p(f"  {what:<18} {st}")
        p()
        totals: Dict[str, int] = {}
        for sub, side in SIDES:
            path = os.path.join(state, sub)
            drv = mj.Driver(state_dir=path)
            result = drv.recover()
            p(f"recovery of the {side} driver ({len(result)} recorded domains):")
            p(f"  {'domain':<8} {'record':<50} {'libvirt does':<47} {'job':<7} why")
            for name, rec in result.items():
                action = str(rec.action)
                if rec.paused_by:
                    action += f" ({'/'.join(rec.paused_by)})"
                if rec.destroy:
                    action += " + kill (destroy)"
                why = rec.why + ("; destroy: killed" if rec.destroy else "")
                p(f"  {name:<8} {str(rec.status):<50} {action:<47} {rec.job_after:<7} {why}")
                totals[rec.job_after] = totals.get(rec.job_after, 0) + 1
            left = ", ".join(f"{n} ({drv.lookup(n).job_status()})" for n in drv.domains())
            p(f"  driver now: {left or 'no domains'}")
            p()
            drv.close()
        p("summary: " + ", ".join(f"{v} {k}" for k, v in sorted(totals.items())))
    return 0
