"""Driver: the domain list (see _driver_base) over C domains."""

from __future__ import annotations

from .. import _args
from .binding import last_error, lib, new_domain
from .._base import DriverBase
from .domain import Domain


class Driver(DriverBase[Domain]):
    __slots__ = ()
    __doc__ = DriverBase.__doc__

    def _check_name(self, name: object, what: str) -> bytes:
        return _args.name_bytes(name, what)

    def _new_domain(self, name: str, checked: bytes) -> Domain:
        return Domain(new_domain(checked, self._timeout, self._max_queued, self._strict),
                      name, self)

    def _remove(self, dom: Domain) -> int:
        refs = lib.mj_domain_remove(dom._p)
        if refs < 0:
            raise last_error()
        return refs

    def _cancel(self, dom: Domain, checked_reason: bytes) -> None:
        lib.mj_domain_cancel_waiters(dom._p, checked_reason)
