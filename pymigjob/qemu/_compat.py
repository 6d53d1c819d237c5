"""The asyncio begins this package needs, from the library when it has them.

``Domain.begin_nested_job_async``, ``migration_job_start_async`` and
``abort_job_async`` are the library's; until a build has them, the blocking
call runs in a worker thread.  A coroutine cancelled while that thread
waits gives back whatever the thread obtained, so a cancelled begin holds
nothing, as with the library's own asyncio begins.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable, Optional

import pymigjob as mj

__all__ = ["begin_nested_job_async", "migration_job_start_async", "abort_job_async"]


async def _in_thread(begin: Callable[[], None], undo: Optional[Callable[[], Any]]) -> None:
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(None, begin)
    try:
        await asyncio.shield(fut)
    except asyncio.CancelledError:
        if undo is not None:
            def give_back(f: asyncio.Future[None]) -> None:
                if not f.cancelled() and f.exception() is None:
                    undo()
            fut.add_done_callback(give_back)
        raise


async def begin_nested_job_async(dom: mj.Domain, async_job: mj.AsyncJob,
                                 api: Optional[str] = None,
                                 timeout: Optional[float] = None) -> None:
    native = getattr(dom, "begin_nested_job_async", None)
    if native is not None:
        await native(async_job, api=api, timeout=timeout)
        return
    await _in_thread(functools.partial(dom.begin_nested_job, async_job, api, timeout),
                     dom.end_nested_job)


async def migration_job_start_async(dom: mj.Domain, async_job: mj.AsyncJob,
                                    mask: Optional[int] = None, api: Optional[str] = None,
                                    timeout: Optional[float] = None) -> None:
    native = getattr(dom, "migration_job_start_async", None)
    if native is not None:
        await native(async_job, mask=mask, api=api, timeout=timeout)
        return
    await _in_thread(functools.partial(dom.migration_job_start, async_job, mask, api, timeout),
                     dom.migration_job_finish)


async def abort_job_async(dom: mj.Domain, api: Optional[str] = None,
                          timeout: Optional[float] = None) -> None:
    native = getattr(dom, "abort_job_async", None)
    if native is not None:
        await native(api=api, timeout=timeout)
        return
    await _in_thread(functools.partial(dom.abort_job, api, timeout), None)
