"""pymigjob: libvirt's QEMU-driver job and migration-phase locking, with a C
core.  The public names of api.md live here, and this is the one place a
backend is chosen.

``PYMIGJOB_IMPL`` selects, explicitly:

* unset, empty or ``c``: the C core (pymigjob._c).  When it is not built,
  ``import pymigjob`` raises ImportError: there is no silent fallback.
* ``pure``: the pure-Python twin (pymigjob.pure) under the same names; the
  C core is never imported.

``pymigjob.backend`` says which ("c" or "pure"), ``pymigjob.backend_features``
what it has.  ``import pymigjob.pure`` gives the twin in either mode; with the
C core present the two live side by side in one process and share the enum,
exception and guard classes.  Without it (and PYMIGJOB_IMPL unset) this
package is only the twin's parent: ``import pymigjob.pure`` works, and any
name taken from ``pymigjob`` directly raises the ImportError.
"""

from __future__ import annotations

import os
import sys

from . import _public
from ._version import __version__

__all__ = ["Domain", "Driver", "__version__", "backend", "backend_features",
           *_public.__all__]

_ENV_VAR = "PYMIGJOB_IMPL"
_CHOICES = {"": "c", "c": "c", "pure": "pure"}


def _requested() -> str:
    raw = os.environ.get(_ENV_VAR, "")
    try:
        return _CHOICES[raw.strip().lower()]
    except KeyError:
        raise ImportError(
            f"{_ENV_VAR}={raw!r} is not a pymigjob implementation: "
            "use 'c' (the default, the C core) or 'pure' (the pure-Python twin)"
        ) from None


def _parent_of_pure() -> bool:
    """True while this package is being imported as the parent of
    pymigjob.pure (``import pymigjob.pure``, ``importlib.import_module``):
    importlib's frames for that import are on the stack.  Asked only when
    the C core is missing, to tell that explicit choice of the twin from an
    ``import pymigjob`` that must fail."""
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


#: "c" or "pure": the implementation behind this package's names
backend: str = _requested()
_missing: ImportError | None = None

if backend == "pure":
    from .pure import FEATURES as backend_features
    from .pure import Domain, Driver
else:
    try:
        from ._c import FEATURES as backend_features
        from ._c import Domain, Driver
    except ImportError as exc:
        if not _parent_of_pure():
            raise
        _missing = exc

if _missing is None:
    from ._public import *  # noqa: F401,F403 - the shared public names (_public.__all__)
else:
    # `import pymigjob.pure` without the C core: this package is only the
    # twin's parent; its own names stay unavailable, with the reason
    def __getattr__(name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(f"module 'pymigjob' has no attribute {name!r}")
        raise ImportError(f"pymigjob.{name} is not available: {_missing} "
                          "(only pymigjob.pure was imported)", name="pymigjob")
