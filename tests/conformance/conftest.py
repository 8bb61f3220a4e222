"""Shared fixtures for the conformance tests (see helpers.py).

* `ocirt`: the CLI with a private --root under /tmp (helpers.Ocirt).  After the
  test it asserts nothing is left: no state dir, no mount naming the root or a
  bundle in /proc/self/mountinfo, no process of the test's containers, no cgroup
  dir named after them; then it removes whatever was left anyway.
* `module_ocirt`: the same, module-scoped (one container probed by several tests).
* `bundle`: a fresh busybox bundle with the default config (`true`), made by `ocirt`.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="conformance tests run ocirt as root (euid is not 0)")
        for item in items:
            if "conformance" in str(item.fspath):
                item.add_marker(skip)


def _checked_ocirt():
    o = helpers.Ocirt()
    try:
        yield o
        left = o.leftovers()
    finally:
        o.cleanup()
    assert not left, "the test left behind:\n  " + "\n  ".join(left)


@pytest.fixture
def ocirt():
    yield from _checked_ocirt()


@pytest.fixture(scope="module")
def module_ocirt():
    """Like `ocirt`, shared by a module's tests (for one container whose output
    several tests check); the leftover check runs after the module."""
    yield from _checked_ocirt()


@pytest.fixture
def bundle(ocirt):
    return ocirt.bundle()
