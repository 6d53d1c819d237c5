"""``python -m pymigjob demo|bench [options]``: the command line's dispatch.

The tools live beside the library, not in it: cli/demo (the demo, by role),
cli/bench (the benchmarks, by section) and cli/qemu_* (`demo --qemu`).  Each is imported only when its
command runs, so ``--version`` and ``--help`` load neither, and a build
without cli/bench says so instead of failing."""

from __future__ import annotations

import importlib
import sys
from typing import List, Optional, Sequence

from .._version import __version__

USAGE = """\
usage: python -m pymigjob {demo,bench,daemon} [options]
       python -m pymigjob --version

  demo   concurrent v3 migrations between two drivers while other threads
         query, modify, abort and destroy the same domains (demo --help);
         demo --qemu: the same on real QEMU, two daemons (demo --qemu --help)
  bench  micro-benchmarks of the job primitives (bench --help)
  daemon the reference daemon on real QEMU (daemon --help)
"""


def main(argv: Optional[Sequence[str]] = None) -> int:
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="", file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    if args[0] in ("--version", "-V"):
        print(f"pymigjob {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command == "demo" and "--qemu" in rest:
        return importlib.import_module("pymigjob.cli.qemu_demo").main(
            [a for a in rest if a != "--qemu"])
    if command == "daemon":
        return importlib.import_module("pymigjob.daemon.main").main(rest)
    if command == "demo":
        return importlib.import_module("pymigjob.cli.demo").main(rest)
    if command == "bench":
        try:
            bench = importlib.import_module("pymigjob.cli.bench")
        except ModuleNotFoundError as e:
            if e.name != "pymigjob.cli.bench":
                raise
            print("python -m pymigjob bench: the benchmarks are not available in this "
                  "build (no module pymigjob.cli.bench)", file=sys.stderr)
            return 2
        return bench.main(rest)
    print(f"python -m pymigjob: unknown command {command!r}\n\n{USAGE}", end="",
          file=sys.stderr)
    return 2

