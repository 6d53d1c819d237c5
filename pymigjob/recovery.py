"""``pymigjob.recovery``, the name README.md and api.md give restart recovery
(``RECOVERY_TABLE``, ...), is ``pymigjob.persist.recovery`` itself (the module
object, as ``os.path`` is ``posixpath``)."""

import sys

from .persist import recovery

sys.modules[__name__] = recovery
