"""pytest plugin used by .ci/sanitize.sh: marks every test in the files named
in $SANITIZE_THREADED_FILES (base names, space-separated) as `concurrency`,
so that `-m concurrency` also selects the threaded suites whose authors did
not mark them."""

import os

import pytest

FILES = set(os.environ.get("SANITIZE_THREADED_FILES", "").split())


@pytest.hookimpl(tryfirst=True)  # before -m deselects anything
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in FILES:
            item.add_marker(pytest.mark.concurrency)
