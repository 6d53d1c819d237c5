"""``pymigjob.aio``, the name README.md and docs/DECISIONS.md give the C-backed
library's asyncio waiting (its notifier, ``NOTIFIER_IDLE``, ``begin``), is
another name of ``pymigjob._c.aio``: the module object itself, as
``os.path`` is ``posixpath``, so its settings are the live ones."""

import sys

from ._c import aio

sys.modules[__name__] = aio
