"""The process test_recovery_crash.py kills, one state per worker.

Started once as a *zygote* (``python _recovery_crash_child.py``): it imports
pymigjob, then reads commands from stdin, one per line:

    run STATE_DIR NAME STEPS   fork a worker; print "pid PID", then, once the
                               worker is dead, "exit PID STATUS" (waitpid's)
    quit

A worker opens a Driver on STATE_DIR, adds domain NAME and makes the calls
STEPS lists (JSON: ``[[method, [args...], {kwargs...}], ...]``, kinds as
numbers) -- the daemon's calls up to the moment of the crash, each tracked
change written before the call returns.  Then it prints "ready PID" and
waits for the SIGKILL; it never exits by itself.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

import pymigjob as mj


def worker(state_dir: str, name: str, steps: list) -> None:
    try:
        drv = mj.Driver(state_dir=state_dir)
        dom = drv.add_domain(name)
        for method, args, kwargs in steps:
            target = drv if method == "abandon" else dom
            getattr(target, method)(*args, **kwargs)
        print(f"ready {os.getpid()}", flush=True)
    except BaseException:
        print(f"failed {os.getpid()} {json.dumps(traceback.format_exc())}", flush=True)
    while True:  # the kill ends it
        time.sleep(1)


def zygote() -> None:
    for line in sys.stdin:
        cmd = line.split(" ", 3)
        if not cmd or cmd[0].strip() == "quit":
            return
        state_dir, name, steps = cmd[1], cmd[2], json.loads(cmd[3])
        pid = os.fork()
        if pid == 0:
            try:
                worker(state_dir, name, steps)
            finally:
                os._exit(70)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {status}", flush=True)


if __name__ == "__main__":
    zygote()
