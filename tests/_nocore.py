"""Running a snippet in a child Python the way a machine without the C core
would (imported as ``_nocore``; tests/backends)."""

from __future__ import annotations

import os
import subprocess
import sys

# a finder that makes `pymigjob._c._core` unimportable, as on a machine
# where the extension was never built
NO_CORE = """
import importlib.abc, sys
class NoCore(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "pymigjob._c._core":
            raise ImportError("no C core here")
sys.meta_path.insert(0, NoCore())
"""


def run(code: str, impl: str | None = None, no_core: bool = True) -> subprocess.CompletedProcess:
    """`code` in a child interpreter with PYMIGJOB_IMPL=`impl` (unset for
    None) and, with `no_core`, no C core to import."""
    env = dict(os.environ)
    env.pop("PYMIGJOB_IMPL", None)
    if impl is not None:
        env["PYMIGJOB_IMPL"] = impl
    return subprocess.run([sys.executable, "-c", (NO_CORE if no_core else "") + code],
                          env=env, capture_output=True, text=True, timeout=60)
