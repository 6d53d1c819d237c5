"""A domain's QEMU process: start, adopt after a restart, kill."""

from __future__ import annotations

from _qemu_skip import require_qemu

require_qemu()

import os
from pathlib import Path

import pymigjob as mj
import pytest
from _qemu_helpers import inspect, run
from pymigjob.qemu import QemuProcess, RuntimeFiles


def test_start_paused_adopt_and_kill(state_root):
    files = RuntimeFiles(Path(state_root), "vm1")

    async def scenario():
        proc = await QemuProcess.start(files)
        assert proc.alive and files.pidfile.exists()
        assert int(files.pidfile.read_text()) == proc.pid
        seen = await inspect(files.inspect)
        assert seen == {"status": "prelaunch", "running": False, "migration": "none"}
        again = QemuProcess.adopt(files)        # what a restarted daemon finds
        assert again is not None and again.pid == proc.pid and again.alive
        await again.kill()                      # not its child: killed all the same
        assert not proc.alive and not again.alive
        assert not files.monitor.exists() and not files.pidfile.exists()
        assert QemuProcess.adopt(files) is None
        await proc.kill()                       # idempotent

    run(scenario())


def test_adopt_refuses_a_stale_or_foreign_pidfile(state_root):
    files = RuntimeFiles(Path(state_root), "vm1")
    files.directory.mkdir(parents=True, exist_ok=True)
    files.pidfile.write_text(f"{os.getpid()}\n")   # alive, but not this domain's QEMU
    assert QemuProcess.adopt(files) is None
    files.pidfile.write_text("999999999\n")        # no such process
    assert QemuProcess.adopt(files) is None
    files.pidfile.write_text("garbage")
    assert QemuProcess.adopt(files) is None


def test_incoming_qemu_waits_for_migration(state_root):
    files = RuntimeFiles(Path(state_root), "in1")

    async def scenario():
        proc = await QemuProcess.start(files, incoming=True)
        try:
            assert (await inspect(files.inspect))["status"] == "inmigrate"
        finally:
            await proc.kill()

    run(scenario())


def test_socket_path_too_long_is_refused_before_starting():
    files = RuntimeFiles(Path("/tmp/" + "d" * 120), "vm1")
    with pytest.raises(mj.OperationFailed, match="too long"):
        run(QemuProcess.start(files))


def test_missing_binary_says_how_to_install(state_root):
    files = RuntimeFiles(Path(state_root), "vm1")
    with pytest.raises(mj.OperationFailed, match="apt-get install qemu-system-x86"):
        run(QemuProcess.start(files, binary="no-such-qemu-binary"))
