"""``python -m pymigjob daemon`` as a process: loopback by default, one
JSON line once it listens, SIGTERM leaves the guests running, and the next
start adopts them."""

from __future__ import annotations

from _qemu_skip import require_qemu

require_qemu()

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path


def _daemon(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pymigjob", "daemon", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _request(url: str, method: str = "GET", body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method),
                                timeout=30) as r:
        return json.loads(r.read())


def test_refuses_a_non_loopback_address_without_allow_remote(state_root):
    proc = _daemon("--listen", "192.0.2.1:8100", "--state-dir", state_root)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--allow-remote" in err


def test_sigterm_leaves_guests_running_and_a_restart_adopts_them(state_root):
    args = ("--listen", "127.0.0.2:0", "--state-dir", str(Path(state_root) / "s"))
    proc = _daemon(*args)
    try:
        url = json.loads(proc.stdout.readline())["listening"]
        _request(f"{url}/v1/domains", "POST", {"name": "vm1"})
        pid = _request(f"{url}/v1/domains/vm1/start", "POST", {})["pid"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    again = _daemon(*args)
    try:
        hello = json.loads(again.stdout.readline())
        assert hello["recovered"] == []          # no job was recorded: nothing to decide
        state = _request(f"{hello['listening']}/v1/domains/vm1")
        assert state["pid"] == pid and state["state"] == "running"
        assert _request(f"{hello['listening']}/v1/domains/vm1/query", "POST",
                        {})["status"]["running"]
        _request(f"{hello['listening']}/v1/domains/vm1/destroy", "POST", {})
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=30)
