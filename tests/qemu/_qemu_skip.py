"""Whether QEMU can run here, and why not (imports nothing of the extra)."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


def qemu_unavailable() -> str | None:
    missing = []
    for module in ("qemu.qmp", "aiohttp", "prometheus_client"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(module)
    if missing:
        return (f"the qemu extra is not installed ({', '.join(missing)} missing): "
                "pip install -e '.[qemu,test]'")
    binary = os.environ.get("PYMIGJOB_QEMU", "qemu-system-x86_64")
    if shutil.which(binary) is None:
        return f"{binary} not found: apt-get install qemu-system-x86"
    if not os.access("/proc/self/stat", os.R_OK):
        return "no /proc: QEMU processes cannot be watched here"
    return None


REASON = qemu_unavailable()


def require_qemu() -> None:
    """At the top of a test module: skip it, saying why, where QEMU cannot
    run -- unless PYMIGJOB_REQUIRE_QEMU=1 (.ci/qemu.sh where QEMU is
    installed), which makes that an error."""
    if REASON is None:
        return
    if os.environ.get("PYMIGJOB_REQUIRE_QEMU") == "1":
        pytest.fail(f"QEMU tests required but cannot run: {REASON}", pytrace=False)
    pytest.skip(REASON, allow_module_level=True)
