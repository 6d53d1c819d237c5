"""Helpers of the asyncio tests (tests/aio/), imported as ``_aiohelpers``."""

from __future__ import annotations

import asyncio
import gc
import os

import pymigjob as mj
from pymigjob import aio
from _mjhelpers import DEADLINE

A = mj.AsyncJob
J = mj.Job


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 3 * DEADLINE))


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def until(pred, what="condition"):
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not pred():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


async def queued(dom, n):
    await until(lambda: dom.jobs_queued == n, f"jobs_queued == {n}")


def idle(dom, refs=1):
    assert dom.active_job == J.NONE
    assert dom.async_job == A.NONE
    assert dom.jobs_queued == 0
    assert dom.refs == refs


def no_notifier():
    """Every notifier has been released (reader removed, eventfd closed)."""
    gc.collect()
    assert dict(aio._notifiers) == {}

