"""pymigjob 0.1, built from this repository's history, as a baseline in the
same run: "begin+end is no slower than 0.1's".

0.1 cannot be imported beside today's package (both are ``pymigjob``), so
each version runs in a worker process of the same shape, fed one round at a
time, the two interleaved.  Each worker also times two no-op calls into its
own C core (the same cffi, compiler and machine): the two floors should
agree, and the benchmark compares begin+end over each side's floor.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import List, Optional, Tuple

#: the last commit of 0.1 (2026-11-26), the release 0.2 is measured against
RELEASE_0_1 = "399a1ea"

ROOT = Path(__file__).resolve().parent.parent

#: how each version reaches mj_noop
NOOP_IMPORT = {"0.1": "from pymigjob._binding import lib",
               "today": "from pymigjob._c.binding import lib"}

#: runs in the worker: "K_subject K_noop" on stdin -> per-op CPU seconds on stdout
WORKER = r"""
import json, sys, time, timeit
import pymigjob
NOOP_IMPORT
dom = pymigjob.Driver().add_domain("bench-vm")
glb = {"dom": dom, "J": pymigjob.Job.MODIFY, "noop": lib.mj_noop}
subject = timeit.Timer(STMT, timer=time.thread_time, globals=glb)
floor = timeit.Timer("noop(); noop()", timer=time.thread_time, globals=glb)
print("ready", flush=True)
for line in sys.stdin:
    k_subject, k_floor = map(int, line.split())
    out = [subject.timeit(k_subject) / k_subject, floor.timeit(k_floor) / k_floor]
    print(json.dumps(out), flush=True)
"""


def build(cache: Path) -> Tuple[Optional[Path], str]:
    """0.1's source tree with its C core compiled in place, under `cache`;
    (None, why) when the commit or a compiler is not there."""
    src = cache / f"pymigjob-{RELEASE_0_1}"
    if list((src / "pymigjob").glob("_core*.so")):
        return src, ""
    try:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", RELEASE_0_1],
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        stderr = getattr(e, "stderr", b"") or b""
        return None, (f"0.1 ({RELEASE_0_1}) is not in this clone's history "
                      f"({stderr.decode(errors='replace').strip() or e})")
    src.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(src, filter="data")
    # the scratch copy's project files would make setuptools validate them
    for name in ("pyproject.toml", "setup.py", "setup.cfg"):
        (src / name).unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "build_ffi.py"], cwd=src, capture_output=True,
                          text=True, env={**os.environ, "PYMIGJOB_SANITIZE": ""})
    if done.returncode != 0 or not list(src.glob("pymigjob/_core*.so")):
        return None, f"building 0.1's C core failed: {done.stderr.strip()[-500:]}"
    return src, ""


class Worker:
    """A process running one version's statement and its floor, a round at a
    time: 0.1 from its built tree (`src`), today's from the installed package."""

    def __init__(self, version: str, stmt: str, src: Optional[Path] = None) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("PYMIGJOB_IMPL", "PYTHONPATH")}
        if src is not None:
            env["PYTHONPATH"] = str(src)
        code = WORKER.replace("NOOP_IMPORT", NOOP_IMPORT[version]).replace("STMT", repr(stmt))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, env=env, cwd=src or Path.home())
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline().strip()
        if ready != "ready":
            self.close()
            raise RuntimeError(f"the {version} worker did not start: {ready!r}")

    def round(self, k_subject: int, k_floor: int) -> List[float]:
        """[statement, floor]: CPU seconds per op."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{k_subject} {k_floor}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
