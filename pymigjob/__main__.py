"""``python -m pymigjob demo|bench [options]``."""

from __future__ import annotations

import importlib
import sys
from typing import List, Optional, Sequence

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
        from pymigjob._version import __version__
        print(f"pymigjob {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command == "demo" and "--qemu" in rest:
        from pymigjob.cli import qemu_demo
        return qemu_demo.main([a for a in rest if a != "--qemu"])
    if command == "daemon":
        from pymigjob.daemon import main as daemon
        return daemon.main(rest)
    if command == "demo":
        from pymigjob import demo
        return demo.main(rest)
    if command == "bench":
        try:
            bench = importlib.import_module("pymigjob.bench")
        except ModuleNotFoundError as e:
            if e.name != "pymigjob.bench":
                raise
            print("python -m pymigjob bench: the benchmarks are not available in this "
                  "build (no module pymigjob.bench)", file=sys.stderr)
            return 2
        return bench.main(rest)
    print(f"python -m pymigjob: unknown command {command!r}\n\n{USAGE}", end="",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
