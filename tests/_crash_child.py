"""The process test_crash.py kills.

Started once as a *zygote* (``python _crash_child.py``): it imports pymigjob,
then reads commands from stdin, one per line:

    run STATE_DIR ACK_FILE SEED   fork a worker; print "pid PID", then, once the
                                  worker is dead, "exit PID STATUS" (waitpid's)
    quit

Forking from an already-imported, single-threaded zygote makes each worker
start in milliseconds, so the test can afford hundreds of kills.

A worker opens a Driver on STATE_DIR, recovers it, and runs migrations
forever on six domains from three threads (each thread owns two domains, so
each domain's calls are sequential): v3 and v2 flows on both sides,
SAVE/DUMP jobs, DESTROY jobs alone and during Perform3, and abandons of parked
migrations.  Around every call that changes a tracked state it appends to
ACK_FILE, each line with one write(2):

    I SEQ NAME [STATE, ...]   before the call: the states it may leave on disk
    A SEQ NAME STATE          after it returned (so its record is durable)
    E text                    a worker's own check failed (then it waits)

STATE is the record without its start time (JSON of JobStatus.to_dict()),
predicted by the worker's own model, which it checks against job_status()
after each call.  The worker never exits by itself: the test kills it.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import traceback

import pymigjob as mj
from pymigjob.persist.abandon import ABANDON_API
from pymigjob.persist.status import JobStatus

A, P, J = mj.AsyncJob, mj.Phase, mj.Job
OUT, IN = A.MIGRATION_OUT, A.MIGRATION_IN
NAMES = [f"vm{i}" for i in range(6)]
THREADS = 3
PAUSE = 0.002  # up to this long between two calls, so that every state dwells


def key(status: JobStatus) -> dict:
    d = status.to_dict()
    del d["started"]
    return d


def K(job=J.NONE, async_job=A.NONE, phase=P.NONE, owner=None) -> dict:
    return key(JobStatus(job, async_job, phase, owner, 0 if async_job else None))


IDLE = K()


class Worker:
    def __init__(self, state_dir: str, ack_path: str, seed: int) -> None:
        self.fd = os.open(ack_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.seed = seed
        self.seq = 0
        self.seq_lock = threading.Lock()
        self.drv = mj.Driver(job_wait_timeout=10.0, state_dir=state_dir)
        self.drv.recover()
        for name in NAMES:
            if name not in self.drv:
                self.drv.add_domain(name)

    def emit(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())

    def fail(self, text: str) -> None:
        self.emit("E " + json.dumps(text))
        while True:  # wait for the kill (never exit: see test_crash)
            time.sleep(1)

    def step(self, dom: mj.Domain, after: list, call, *args, **kw) -> None:
        with self.seq_lock:
            self.seq += 1
            seq = self.seq
        self.emit(f"I {seq} {dom.name} {json.dumps(after)}")
        call(*args, **kw)
        got = key(dom.job_status())
        if got != after[-1]:
            self.fail(f"{dom.name}: after {call.__name__} expected {after[-1]}, got {got}")
        self.emit(f"A {seq} {dom.name} {json.dumps(got)}")

    # ---- workloads: one domain, start to end ---------------------------------

    def v3_out(self, dom, rng, pause):
        self.step(dom, [K(J.NONE, OUT, P.NONE, "begin3")],
                  dom.migration_job_start, OUT, api="begin3")
        self.step(dom, [K(J.NONE, OUT, P.BEGIN3, "begin3")], dom.migration_job_set_phase, P.BEGIN3)
        dom.migration_job_continue()
        pause()
        if rng.random() < 0.12:
            return self.abandon(dom)
        self.step(dom, [K(J.NONE, OUT, P.PERFORM3, "perform3")],
                  dom.migration_job_start_phase, P.PERFORM3, api="perform3")
        pause()
        if rng.random() < 0.3:
            self.step(dom, [K(J.DESTROY, OUT, P.PERFORM3, "perform3")],
                      dom.begin_job, J.DESTROY, api="destroy")
            pause()
            self.step(dom, [K(J.NONE, OUT, P.PERFORM3, "perform3")], dom.end_job)
        self.step(dom, [K(J.NONE, OUT, P.PERFORM3_DONE, "perform3")],
                  dom.migration_job_set_phase, P.PERFORM3_DONE)
        dom.migration_job_continue()
        pause()
        if rng.random() < 0.12:
            return self.abandon(dom)
        phase = P.CONFIRM3_CANCELLED if rng.random() < 0.35 else P.CONFIRM3
        self.step(dom, [K(J.NONE, OUT, phase, "confirm3")],
                  dom.migration_job_start_phase, phase, api="confirm3")
        pause()
        self.step(dom, [IDLE], dom.migration_job_finish)

    def abandon(self, dom):
        self.step(dom, [K(J.NONE, OUT, P.CONFIRM3_CANCELLED, ABANDON_API), IDLE],
                  self.drv.abandon, dom.name)

    def v2_out(self, dom, rng, pause):
        self.step(dom, [K(J.NONE, OUT, P.NONE, "perform2")],
                  dom.migration_job_start, OUT, api="perform2")
        self.step(dom, [K(J.NONE, OUT, P.PERFORM2, "perform2")],
                  dom.migration_job_set_phase, P.PERFORM2)
        pause()
        self.step(dom, [IDLE], dom.migration_job_finish)

    def incoming(self, dom, rng, pause, finish, prepare_api, finish_api):
        self.step(dom, [K(J.NONE, IN, P.NONE, prepare_api)],
                  dom.migration_job_start, IN, api=prepare_api)
        self.step(dom, [K(J.NONE, IN, P.PREPARE, prepare_api)],
                  dom.migration_job_set_phase, P.PREPARE)
        dom.migration_job_continue()
        pause()
        self.step(dom, [K(J.NONE, IN, finish, finish_api)],
                  dom.migration_job_start_phase, finish, api=finish_api)
        pause()
        self.step(dom, [IDLE], dom.migration_job_finish)

    def v3_in(self, dom, rng, pause):
        self.incoming(dom, rng, pause, P.FINISH3, "prepare3", "finish3")

    def v2_in(self, dom, rng, pause):
        self.incoming(dom, rng, pause, P.FINISH2, "prepare2", "finish2")

    def save_or_dump(self, dom, rng, pause):
        kind = A.SAVE if rng.random() < 0.5 else A.DUMP
        self.step(dom, [K(J.NONE, kind, P.NONE, kind.label)],
                  dom.begin_async_job, kind, api=kind.label)
        pause()
        self.step(dom, [IDLE], dom.end_async_job)

    def destroy(self, dom, rng, pause):
        self.step(dom, [K(J.DESTROY, owner="destroy")], dom.begin_job, J.DESTROY, api="destroy")
        pause()
        self.step(dom, [IDLE], dom.end_job)

    WORKLOADS = [("v3_out", 4), ("v3_in", 2), ("v2_in", 1), ("v2_out", 1),
                 ("save_or_dump", 1), ("destroy", 1)]

    def run_thread(self, index: int) -> None:
        rng = random.Random(f"{self.seed}/{index}")
        mine = [self.drv.lookup(n) for n in NAMES[index::THREADS]]
        names = [n for n, _ in self.WORKLOADS]
        weights = [w for _, w in self.WORKLOADS]

        def pause():
            time.sleep(rng.uniform(0, PAUSE))

        try:
            while True:
                dom = rng.choice(mine)
                getattr(self, rng.choices(names, weights)[0])(dom, rng, pause)
                pause()
        except BaseException:
            self.fail(traceback.format_exc())

    def run(self) -> None:
        self.emit("R recovered")
        threads = [threading.Thread(target=self.run_thread, args=(i,), daemon=True)
                   for i in range(THREADS)]
        for t in threads:
            t.start()
        while True:
            time.sleep(1)


def worker_main(state_dir: str, ack_path: str, seed: int) -> None:
    err = os.open(os.path.join(os.path.dirname(ack_path), "worker-stderr.log"),
                  os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(err, 2)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    try:
        Worker(state_dir, ack_path, seed).run()
    except BaseException:
        traceback.print_exc()
        while True:  # never exit on our own (the pid must stay ours until the kill)
            time.sleep(1)


def zygote() -> None:
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            return
        if cmd[0] != "run":
            print(f"error unknown command {cmd[0]}", flush=True)
            continue
        state_dir, ack_path, seed = cmd[1], cmd[2], int(cmd[3])
        pid = os.fork()
        if pid == 0:
            try:
                worker_main(state_dir, ack_path, seed)
            finally:
                os._exit(70)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {status}", flush=True)


if __name__ == "__main__":
    zygote()
