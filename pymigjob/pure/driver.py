"""Driver, in pure Python: the domain list (see pymigjob._base) over
pure domains.  Persistence is the shared pymigjob.persist machinery, which
only uses public Domain methods."""

from __future__ import annotations

from .._base import DriverBase
from .. import _args
from .domain import Domain


class Driver(DriverBase[Domain]):
    __slots__ = ()
    __doc__ = DriverBase.__doc__

    def _check_name(self, name: object, what: str) -> str:
        return _args.name(name, what)

    def _new_domain(self, name: str, checked: str) -> Domain:
        return Domain(checked, self._timeout, self._max_queued, self._strict, self)

    def _remove(self, dom: Domain) -> int:
        return dom._remove()

    def _cancel(self, dom: Domain, checked_reason: str) -> None:
        dom._cancel_waiters(checked_reason)
