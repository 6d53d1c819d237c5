"""Reaping QEMUs orphaned by a killed daemon.

A daemon killed with SIGKILL leaves its QEMUs running (on purpose: that is
what recovery is for).  They are re-parented to the nearest "subreaper"
ancestor, else to PID 1.  When the restarted daemon later kills one, only
that new parent can collect its exit status; until then it stays a zombie.
On a host with systemd as PID 1 that just works.  Where PID 1 does not reap
(some containers), a process that outlives the daemons -- the demo, the
test harness -- declares itself a subreaper and runs a :class:`Reaper`.
Only zombies of QEMU are reaped, so the caller's own ``subprocess.Popen``
children keep their exit status.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Optional

__all__ = ["become_subreaper", "reap_qemus", "Reaper"]

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Orphaned descendants become our children (Linux); False if refused."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_qemus() -> int:
    """Collect every zombie QEMU child of this process; how many."""
    me, reaped = os.getpid(), 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.find(b"(") + 1:stat.rfind(b")")]
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) < 2 or fields[0] != b"Z" or int(fields[1]) != me \
                or not comm.startswith(b"qemu-system"):
            continue
        try:
            os.waitpid(int(entry), os.WNOHANG)
            reaped += 1
        except ChildProcessError:
            pass
    return reaped


class Reaper:
    """A thread that reaps orphaned QEMUs every `interval` seconds."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.subreaper = become_subreaper()
        self.reaped = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> Reaper:
        self._thread = threading.Thread(target=self._run, name="qemu-reaper", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.reaped += reap_qemus()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.reaped += reap_qemus()

    def __enter__(self) -> Reaper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
