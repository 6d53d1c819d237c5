"""Driver, in pure Python: the domain list (pymigjob._base.DriverBase) over
pure domains."""

from __future__ import annotations

from .. import _args
from .._base import DriverBase
from .domain import Domain, TrackedDomain


class Driver(DriverBase[Domain]):
    __slots__ = ()
    __doc__ = DriverBase.__doc__

    def _check_name(self, name: object, what: str) -> str:
        return _args.name(name, what)

    def _new_domain(self, name: str, checked: str, uuid: str | None = None) -> Domain:
        if self._tracker is None:
            return Domain(checked, self._timeout, self._max_queued, self._strict, uuid)
        return TrackedDomain(checked, self._timeout, self._max_queued, self._strict, uuid,
                             tracker=self._tracker)

    def _remove(self, dom: Domain) -> int:
        return dom._remove()

    def _cancel(self, dom: Domain, checked_reason: str) -> None:
        dom._cancel_waiters(checked_reason)
