"""The client API over HTTP: each request takes its job; errors come back
as JSON with libvirt's code and text and a fitting status."""

from __future__ import annotations

from _qemu_skip import require_qemu

require_qemu()

import asyncio

import pymigjob as mj
from _daemon_helpers import Daemon
from _qemu_helpers import guest, run


def _error(body, code, text):
    assert body["error"]["code"] == code, body
    assert text in body["error"]["text"], body


def test_lifecycle_and_errors(state_root):
    async def scenario():
        d = await Daemon(state_root, "127.0.0.2").start()
        try:
            status, body = await d.call("POST", "/v1/domains", {"name": "vm1"})
            assert status == 201 and body["state"] == "shut off"
            status, body = await d.call("POST", "/v1/domains", {"name": "vm1"})
            assert status == 409
            _error(body, mj.ErrorCode.OPERATION_FAILED, "domain 'vm1' already exists")
            status, body = await d.call("POST", "/v1/domains/vm1/query", {})
            assert status == 409
            _error(body, mj.ErrorCode.OPERATION_INVALID,
                   "Requested operation is not valid: domain is not running")
            status, body = await d.call("POST", "/v1/domains/vm1/start", {"paused": True})
            assert status == 200 and body["state"] == "paused" and body["reason"] == "user"
            status, body = await d.call("POST", "/v1/domains/vm1/start")
            assert status == 409
            _error(body, mj.ErrorCode.OPERATION_INVALID, "domain is already running")
            status, body = await d.call("POST", "/v1/domains/vm1/modify", {"command": "cont"})
            assert status == 200 and body == {"return": {}}
            status, body = await d.call("POST", "/v1/domains/vm1/query")
            assert status == 200 and body["status"]["status"] == "running"
            assert (await guest(d.host, "vm1"))["running"]
            status, body = await d.call("GET", "/v1/domains")
            assert [x["name"] for x in body["domains"]] == ["vm1"]
            status, body = await d.call("GET", "/v1/domains/vm1")
            assert body["job"] == {"active": "none", "owner_api": None, "async": "none",
                                   "async_owner_api": None, "phase": "none", "mask": 19,
                                   "queued": 0, "abort_requested": False,
                                   "record": "job=none async=none"}
            assert body["stats"]["monitor_commands"] >= 4
            status, body = await d.call("POST", "/v1/domains/vm1/abort")
            assert status == 409
            _error(body, mj.ErrorCode.OPERATION_INVALID, "no job is active on the domain")
            status, body = await d.call("POST", "/v1/domains/nope/query")
            assert status == 404
            _error(body, mj.ErrorCode.NO_DOMAIN, "no domain with matching name 'nope'")
            status, body = await d.call("POST", "/v1/domains/vm1/destroy")
            assert status == 200 and body["state"] == "shut off"
            assert await guest(d.host, "vm1") is None
            status, body = await d.call("POST", "/v1/domains/vm1/destroy")
            assert status == 409
            _error(body, mj.ErrorCode.OPERATION_INVALID, "domain is not running")
            status, body = await d.call("DELETE", "/v1/domains/vm1")
            assert status == 200 and "vm1" not in d.host.vms
            assert d.host.definitions.load_all() == {}
            status, body = await d.call("DELETE", "/v1/domains/vm1")
            assert status == 404
        finally:
            await d.stop()

    run(scenario())


def test_a_busy_job_is_503_naming_its_holder(state_root):
    async def scenario():
        d = await Daemon(state_root, "127.0.0.2").start()
        try:
            await d.call("POST", "/v1/domains", {"name": "vm1"})
            await d.call("POST", "/v1/domains/vm1/start")
            vm = d.host.vm("vm1")
            async with vm.job(mj.Job.MODIFY, api="someone"):   # held by another caller
                status, body = await d.call("POST", "/v1/domains/vm1/query",
                                            {"timeout": 0.05})
                assert status == 503
                _error(body, mj.ErrorCode.OPERATION_TIMEOUT,
                       "cannot acquire state change lock (held by monitor=someone)")
                # status needs no job: it answers, and says who holds what
                status, body = await d.call("GET", "/v1/domains/vm1")
                assert status == 200 and body["job"]["active"] == "modify"
                assert body["job"]["owner_api"] == "someone" and body["job"]["queued"] == 1
            status, _ = await d.call("POST", "/v1/domains/vm1/query", {"timeout": 0.05})
            assert status == 200
        finally:
            await d.stop()

    run(scenario())


def test_queries_wait_in_line_for_a_modify(state_root):
    async def scenario():
        d = await Daemon(state_root, "127.0.0.2").start()
        try:
            await d.call("POST", "/v1/domains", {"name": "vm1"})
            await d.call("POST", "/v1/domains/vm1/start")
            results = await asyncio.gather(
                *(d.call("POST", "/v1/domains/vm1/query") for _ in range(10)),
                *(d.call("POST", "/v1/domains/vm1/modify", {"command": "system_reset"})
                  for _ in range(3)))
            assert [s for s, _ in results] == [200] * 13
            assert d.host.vm("vm1").domain.jobs_queued == 0
        finally:
            await d.stop()

    run(scenario())
