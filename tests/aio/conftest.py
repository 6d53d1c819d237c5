"""Fixtures of the asyncio tests (pymigjob.aio's notifier)."""

from __future__ import annotations

import gc

import pytest

from pymigjob import aio
from _aiohelpers import fds, no_notifier


@pytest.fixture
def no_leftovers():
    """After the test every notifier is released and no fd is left.  (Fewer
    fds than before is no leak: an earlier test's garbage may be collected
    meanwhile, closing its files.)"""
    gc.collect()
    before = fds()
    yield
    no_notifier()
    assert fds() <= before, "an eventfd (or another fd) leaked"


@pytest.fixture
def immediate(monkeypatch):
    """Release a loop's notifier as soon as its last waiter goes."""
    monkeypatch.setattr(aio, "NOTIFIER_IDLE", 0)


@pytest.fixture
def counting(monkeypatch):
    """Counts the waiters detached onto a notifier (contended begins)."""
    calls = [0]
    real = aio._detach

    def detach(n, out):
        calls[0] += 1
        return real(n, out)

    monkeypatch.setattr(aio, "_detach", detach)
    return calls

