"""Driver: the domain list (see _driver_base) over C domains."""

from __future__ import annotations

from ._binding import encode_name, ffi, last_error, lib
from ._driver_base import DriverBase
from .domain import Domain


class Driver(DriverBase[Domain]):
    __slots__ = ()
    __doc__ = DriverBase.__doc__

    def _check_name(self, name: object, what: str) -> bytes:
        return encode_name(name, what)

    def _new_domain(self, name: str, checked: bytes) -> Domain:
        p = lib.mj_domain_new(checked, self._timeout, self._max_queued, self._strict)
        if p == ffi.NULL:
            raise last_error()
        return Domain(ffi.gc(p, lib.mj_domain_unpin), name, self)

    def _remove(self, dom: Domain) -> int:
        refs = lib.mj_domain_remove(dom._p)
        if refs < 0:
            raise last_error()
        return refs

    def _cancel(self, dom: Domain, checked_reason: bytes) -> None:
        lib.mj_domain_cancel_waiters(dom._p, checked_reason)
