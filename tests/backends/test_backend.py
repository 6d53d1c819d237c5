"""Choosing the implementation: PYMIGJOB_IMPL=pure works where the C core
cannot be imported, and nothing falls back to the twin silently."""

from __future__ import annotations

import os

from _nocore import run


def test_pure_works_without_the_c_core():
    done = run("""
import pymigjob as mj
assert mj.Driver.__module__ == "pymigjob.pure.driver", mj.Driver.__module__
dom = mj.Driver().add_domain("vm1")
with dom.job(mj.Job.QUERY):
    assert dom.refs == 2
with dom.migration(mj.AsyncJob.MIGRATION_OUT, mj.Phase.BEGIN3, api="begin3"):
    pass
assert dom.async_job == mj.AsyncJob.MIGRATION_OUT and dom.refs == 1
assert mj.Phase.from_label("preform2") == mj.Phase.PERFORM2
print("pure ok")
""", "pure")
    assert done.returncode == 0, done.stderr
    assert "pure ok" in done.stdout


def test_no_silent_fallback_without_the_c_core():
    done = run("import pymigjob")
    assert done.returncode != 0
    assert "ImportError" in done.stderr and "PYMIGJOB_IMPL=pure" in done.stderr


def test_the_default_is_the_c_core():
    import pymigjob

    if os.environ.get("PYMIGJOB_IMPL") != "pure":
        assert pymigjob.Driver.__module__ == "pymigjob._c.driver"


def test_the_module_paths_the_docs_name_are_the_modules():
    """pymigjob.store and pymigjob.recovery (README, api.md) are the persist
    modules themselves; pymigjob.aio (README, DECISIONS) is the C backend's."""
    import pymigjob.persist.recovery
    import pymigjob.persist.store
    import pymigjob.recovery
    import pymigjob.store

    assert pymigjob.store is pymigjob.persist.store
    assert pymigjob.recovery is pymigjob.persist.recovery
    assert pymigjob.store.Store is pymigjob.persist.store.Store
    if "c_core" in pymigjob.backend_features:
        import pymigjob._c.aio
        import pymigjob.aio

        assert pymigjob.aio is pymigjob._c.aio and pymigjob.aio.NOTIFIER_IDLE == 1.0


def test_backend_and_its_features():
    import pymigjob
    import pymigjob.pure

    assert pymigjob.backend in ("c", "pure")
    assert "asyncio" in pymigjob.backend_features
    assert ("c_core" in pymigjob.backend_features) == (pymigjob.backend == "c")
    assert pymigjob.pure.FEATURES <= pymigjob.backend_features
