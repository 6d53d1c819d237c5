"""``python -m pymigjob demo``: concurrent v3 migrations with change protection.

One process plays both hosts.  A *source* and a *destination* :class:`Driver`
each hold the same domain names.  The demo migrates every source domain once
with libvirt's v3 protocol and change protection (libvirt's
src/qemu/MIGRATION.txt)::

    Begin3 (src)    dom.migration(MIGRATION_OUT, BEGIN3)        start; continue
    Prepare3 (dst)  dom.migration(MIGRATION_IN, PREPARE)        start; continue
    Perform3 (src)  dom.migration_phase(MIGRATION_OUT, PERFORM3) ... PERFORM3_DONE; continue
    Finish3 (dst)   dom.migration_phase(MIGRATION_IN, FINISH3)   finish
    Confirm3 (src)  dom.migration_phase(MIGRATION_OUT, CONFIRM3 | CONFIRM3_CANCELLED)  finish

Each of these API calls runs on a worker thread taken from one shared pool, and
never on the thread that ran the previous call of the same migration, the way
libvirtd's RPC workers pick up separate API calls.  Between calls the async job
is *parked*: no thread owns it, but it still keeps other changes out.

Perform3 pretends to drive QEMU: a ``migrate`` monitor command, then a poll
loop of ``query-migrate`` commands (each inside a nested job, so other allowed
jobs can slip in between), with the abort checkpoint (``check_abort``) before
every poll, like libvirt's qemuMigrationWaitForCompletion.

Meanwhile other threads hammer the same domains:

* query clients take QUERY jobs (allowed during a migration out) and, now and
  then, a MIGRATION_OP job (``migrateSetMaxSpeed``: allowed by the mask, but
  refused with "not being migrated" when no migration runs);
* modify clients take MODIFY jobs with a short ``--timeout``: the migration's
  mask keeps them out until it ends, so some wait and some give up, and the
  timeout names the API that holds the lock;
* a destination monitor queries the incoming domains; MIGRATION_IN allows
  nothing but DESTROY, so these mostly time out (a well-known libvirt pain);
* an aborter calls ``abort_job`` on some domains (the checkpoint in Perform3
  then cancels the migration: the destination finishes and removes its domain,
  the source confirms with CONFIRM3_CANCELLED) and once too late (after
  PERFORM3_DONE, when nothing checks the flag any more);
* a destroyer kills a domain's pretend QEMU process and takes a DESTROY job,
  which the mask always allows; Perform3's next monitor call then finds the
  domain gone and the migration is cancelled the same way.

A cancelled Perform3 here leaves the async job parked for Confirm3 to finish
with CONFIRM3_CANCELLED, as the brief of this demo asks (libvirt 0.9.4's
Perform3 error path ends the job itself; its p2p flow confirms as cancelled).

At the end every domain must be idle with ``refs == 1`` (the domain list's
reference), every cancelled incoming domain removed and freed, no job leaked.
The demo checks these invariants (and a few along the way) and exits 1 if any
fails, 2 if the run hangs, 0 otherwise.

The code, by role: plan.py (timings, fates, records), migration.py (the
worker pool and one v3 migration), clients.py (queries, modifies, aborts,
destroys), run.py (Demo: the run and its checks), report.py (timeline and
summary), crash.py (``--crash-recover``); this module reads the command line.
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Optional, Sequence, TextIO

from . import crash
from .migration import Migration
from .plan import DEFAULT_DOMAINS, DEFAULT_THREADS, DEFAULT_TIMEOUT, DemoResult, Fate, make_plan
from .run import Demo

__all__ = ["Demo", "DemoResult", "Fate", "Migration", "build_parser", "main", "make_plan",
           "parse_args", "run_demo"]

# ---- command line ---------------------------------------------------------------


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _positive_float(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pymigjob demo",
        description="Concurrent libvirt-style v3 migrations with change protection between "
                    "two drivers in one process, while other threads query, modify, abort "
                    "and destroy the same domains. Prints a timeline and a summary, checks "
                    "that no job or reference leaks; exits 0 when every invariant holds.")
    ap.add_argument("--domains", type=_positive_int, default=DEFAULT_DOMAINS,
                    help=f"domains to migrate concurrently (default {DEFAULT_DOMAINS})")
    ap.add_argument("--threads", type=_positive_int, default=DEFAULT_THREADS,
                    help=f"migration worker threads in the pool (default {DEFAULT_THREADS})")
    ap.add_argument("--seed", type=int, default=None,
                    help="random seed for the plan, durations and client choices "
                         "(default: a new one, printed)")
    ap.add_argument("--timeout", type=_positive_float, default=DEFAULT_TIMEOUT,
                    help="seconds MODIFY jobs and destination queries wait for the state "
                         f"change lock before giving up (default {DEFAULT_TIMEOUT:g})")
    ap.add_argument("--show", type=int, default=0, metavar="N",
                    help="timeline for the first N domains (default: one domain per "
                         "planned outcome)")
    ap.add_argument("--watchdog", type=_positive_float, default=60.0,
                    help="give up (exit 2) if the migrations take longer (default 60 s)")
    ap.add_argument("--crash-recover", action="store_true",
                    help="run the demo in a child process that keeps its job status in "
                         "state directories, kill it with SIGKILL mid-run, then recover "
                         "both drivers and print libvirt's restart decisions")
    ap.add_argument("--state-dir", default=None, help=argparse.SUPPRESS)
    noise = ap.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    noise.add_argument("-v", "--verbose", action="count", default=0,
                       help="timeline of every domain; -vv also lists every query")
    return ap


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 100000)
    return args


def run_demo(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> DemoResult:
    """Run the demo and return its result (for tests and other callers)."""
    args = parse_args(argv)
    return Demo(args, out if out is not None else sys.stdout).run()


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = parse_args(argv)
        if args.crash_recover:
            return crash.crash_and_recover(args, sys.stdout)
        return Demo(args, sys.stdout).run().exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
