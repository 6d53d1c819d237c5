"""Which implementation ``import pymigjob`` exposes.

``PYMIGJOB_IMPL`` selects, explicitly:

* unset, empty or ``c``: the C core (pymigjob._core).  When it is not built,
  ``import pymigjob`` raises ImportError: there is no silent fallback.
* ``pure``: the pure-Python twin (pymigjob.pure) under the same names; the
  C core is never imported.

``import pymigjob.pure`` gives the pure twin in either mode.  With the C core
present, the two live side by side in one process and share the enum and
exception classes.  Without it (and PYMIGJOB_IMPL unset), the package
itself is only a shell around pymigjob.pure: ``import pymigjob.pure`` works,
anything taken from ``pymigjob`` directly raises the ImportError.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

ENV_VAR = "PYMIGJOB_IMPL"
_CHOICES = {"": "c", "c": "c", "pure": "pure"}


def _requested() -> str:
    raw = os.environ.get(ENV_VAR, "")
    try:
        return _CHOICES[raw.strip().lower()]
    except KeyError:
        raise ImportError(
            f"{ENV_VAR}={raw!r} is not a pymigjob implementation: "
            "use 'c' (the default, the C core) or 'pure' (the pure-Python twin)"
        ) from None


#: "c" or "pure": what ``import pymigjob`` exposes
IMPL: str = _requested()

def c_core_error() -> ImportError | None:
    """None when the C core imports, else the (clear) ImportError."""
    try:
        from . import _binding  # noqa: F401
    except ImportError as exc:
        return exc
    return None


def importing_pure() -> bool:
    """True while this package is being imported as the parent of
    pymigjob.pure (``import pymigjob.pure``, ``importlib.import_module``):
    importlib's frames for that import are on the stack."""
    frame = sys._getframe(1)
    while frame is not None:
        if (frame.f_code.co_name in ("_find_and_load", "_find_and_load_unlocked")
                and frame.f_globals.get("__name__") == "importlib._bootstrap"):
            name = frame.f_locals.get("name")
            if isinstance(name, str) and (name == "pymigjob.pure"
                                          or name.startswith("pymigjob.pure.")):
                return True
        frame = frame.f_back
    return False
