"""``pymigjob.store``, the name README.md gives the job status stores, is
``pymigjob.persist.store`` itself (the module object, as ``os.path`` is
``posixpath``)."""

import sys

from .persist import store

sys.modules[__name__] = store
