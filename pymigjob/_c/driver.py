"""Driver over the C core: the domain list (pymigjob._base.DriverBase) over
C domains."""

from __future__ import annotations

from .. import _args
from .._base import DriverBase
from .binding import last_error, lib, new_domain
from .domain import Domain, TrackedDomain


class Driver(DriverBase[Domain]):
    __slots__ = ()
    __doc__ = DriverBase.__doc__

    def _check_name(self, name: object, what: str) -> bytes:
        return _args.name_bytes(name, what)

    def _new_domain(self, name: str, checked: bytes, uuid: str | None = None) -> Domain:
        p = new_domain(checked, self._timeout, self._max_queued, self._strict, uuid)
        if self._tracker is None:
            return Domain(p, name)
        return TrackedDomain(p, name, tracker=self._tracker)

    def _remove(self, dom: Domain) -> int:
        refs = lib.mj_domain_remove(dom._p)
        if refs < 0:
            raise last_error()
        return refs

    def _cancel(self, dom: Domain, checked_reason: bytes) -> None:
        lib.mj_domain_cancel_waiters(dom._p, checked_reason)
