"""Hostile requests get a clear 4xx, JSON, and change nothing."""

from __future__ import annotations

from _qemu_skip import require_qemu

require_qemu()

import pymigjob as mj
import pytest
from _daemon_helpers import TOKEN, Daemon
from _qemu_helpers import guest, run

AUTH = {"Authorization": f"Bearer {TOKEN}"}

CASES = [
    # (method, path, body or raw bytes, status, libvirt code, text)
    ("POST", "/v1/domains/vm1/query", b"{not json", 400, 8, "not valid JSON"),
    ("POST", "/v1/domains/vm1/query", b"[1, 2]", 400, 8, "must be a JSON object"),
    ("POST", "/v1/domains/vm1/query", b"\xff\xfe", 400, 8, "not valid JSON"),
    ("POST", "/v1/domains/vm1/query", {"timeout": -1}, 400, 8, "field 'timeout' must be > 0"),
    ("POST", "/v1/domains/vm1/query", {"timeout": "1"}, 400, 8, "must be int or float"),
    ("POST", "/v1/domains/vm1/query", {"timeout": True}, 400, 8, "must be int or float"),
    ("POST", "/v1/domains/vm1/query", {"timeout": 1e308}, 400, 8, "must be > 0"),
    ("POST", "/v1/domains/vm1/query", {"bogus": 1}, 400, 8, "unknown field 'bogus'"),
    ("POST", "/v1/domains/vm1/start", {"paused": "yes"}, 400, 8, "must be bool"),
    ("POST", "/v1/domains/vm1/modify", {"command": "quit"}, 400, 8, "is not allowed here"),
    ("POST", "/v1/domains/vm1/modify", {}, 400, 8, "field 'command' is required"),
    ("POST", "/v1/domains/vm1/modify", {"command": "stop", "arguments": [1]}, 400, 8,
     "must be dict"),
    ("POST", "/v1/domains", {"name": "../etc"}, 400, 8, "domain name must be"),
    ("POST", "/v1/domains", {"name": "x" * 41}, 400, 8, "domain name must be"),
    ("POST", "/v1/domains", {"name": "vm2", "memory_mb": 10**9}, 400, 8, "memory_mb"),
    ("POST", "/v1/domains/..%2Fetc/query", {}, 400, 8, "domain name must be"),
    ("POST", "/v1/domains/ghost/query", {}, 404, 42, "no domain with matching name 'ghost'"),
    ("GET", "/v1/nothing-here", None, 404, 3, "no such route"),
    ("PUT", "/v1/domains/vm1", None, 405, 3, "method PUT is not allowed"),
    ("DELETE", "/v1/domains/vm1", None, 409, 55, "cannot undefine an active domain"),
    ("GET", "/v1/domains/vm1/query", None, 405, 3, "method GET is not allowed"),
    ("POST", "/v1/domains/vm1/migrate", {"destination": "ftp://127.0.0.3:1"}, 400, 8,
     "destination must be"),
    ("POST", "/v1/domains/vm1/migrate", {"destination": "http://10.1.2.3:80"}, 400, 8,
     "is not allowed"),
    ("POST", "/v1/domains/vm1/migrate", {"destination": "http://127.0.0.3:9/x?y"}, 400, 8,
     "destination must be"),
    ("POST", "/v1/domains/vm1/migrate", {"destination": "http://127.0.0.3:1",
                                         "bandwidth": 1}, 400, 8, "bandwidth"),
    # peer routes: token first, then order
    ("POST", "/v1/peer/prepare", {"name": "vm9"}, 401, 45, "missing or wrong peer token"),
    ("POST", "/v1/peer/finish", {"name": "vm1", "ok": True}, 401, 45, "peer token"),
]


@pytest.fixture(scope="module")
def results():
    """Every case against one daemon with a running vm1; then what changed."""
    import tempfile, shutil
    root = tempfile.mkdtemp(prefix="mjh", dir="/tmp")

    async def scenario():
        d = await Daemon(root, "127.0.0.2").start()
        try:
            await d.call("POST", "/v1/domains", {"name": "vm1"})
            await d.call("POST", "/v1/domains/vm1/start")
            before = (await d.call("GET", "/v1/domains"))[1]
            before_pid = d.host.vm("vm1").process.pid
            answers = []
            for method, path, body, *_ in CASES:
                raw = body if isinstance(body, bytes) else None
                answers.append(await d.call(method, path, None if raw else body, raw=raw))
            # a phase out of order, with the right token
            answers.append(await d.call("POST", "/v1/peer/finish", {"name": "vm1", "ok": False},
                                        headers=AUTH))
            answers.append(await d.call("POST", "/v1/peer/finish", {"name": "vm1", "ok": True},
                                        headers=AUTH))
            answers.append(await d.call("POST", "/v1/peer/prepare", {"name": "vm9"},
                                        headers=AUTH))
            answers.append(await d.call("POST", "/v1/domains/vm1/query",
                                        raw=b"{" + b" " * 70000 + b"}"))
            after = (await d.call("GET", "/v1/domains"))[1]
            alive = (await guest(d.host, "vm1"))["running"] and \
                d.host.vm("vm1").process.pid == before_pid
            records = {n: str(s) for n, s in d.host.driver.store.load_all().items()}
            return answers, before, after, alive, records
        finally:
            await d.stop()

    try:
        yield run(scenario())
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("i", range(len(CASES)),
                         ids=[f"{m} {p} {str(b)[:30]}" for m, p, b, *_ in CASES])
def test_case(results, i):
    method, path, body, status, code, text = CASES[i]
    got_status, got = results[0][i]
    assert got_status == status, got
    assert got["error"]["code"] == code and text in got["error"]["text"], got


def test_phase_out_of_order_and_no_session(results):
    (finish_status, finish), (unsessioned_status, unsessioned), (prepare_status, prepare), \
        (big_status, big) = results[0][-4:]
    assert unsessioned_status == 409 and "no migration session" in unsessioned["error"]["text"]
    assert finish_status == 409
    assert finish["error"]["code"] == mj.ErrorCode.OPERATION_INVALID
    assert "domain 'vm1' is not processing incoming migration" in finish["error"]["text"]
    assert prepare_status == 409 and "no migration session is open" in prepare["error"]["text"]
    assert big_status == 413 and "too large" in big["error"]["text"]


def test_nothing_changed(results):
    _, before, after, alive, records = results
    assert before == after and alive
    assert records == {}        # no job was ever recorded


def test_peer_calls_refused_without_a_configured_token(state_root):
    async def scenario():
        d = await Daemon(state_root, "127.0.0.2", token=None).start()
        try:
            status, body = await d.call("POST", "/v1/peer/prepare", {"name": "vm1"},
                                        headers=AUTH)
            assert status == 403 and "no --token-file" in body["error"]["text"]
        finally:
            await d.stop()

    run(scenario())
