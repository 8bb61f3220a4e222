"""Malformed config.json through the real CLI (hypothesis): `ocirt create` on
mutated configs (the seccomp profile, hooks, process attributes and everything
else) exits 0 or 1; on 1 it prints ONE line, no traceback, and leaves nothing
behind. tests/unit/test_seccomp_fuzz.py runs thousands of the same in process."""
import copy
import json
import os

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


def _load_unit_fuzz():
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit",
                        "test_seccomp_fuzz.py")
    spec = importlib.util.spec_from_file_location("ocirt_unit_seccomp_fuzz", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


unit_fuzz = _load_unit_fuzz()

from helpers import base_config, error_lines  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def _base():
    cfg = base_config(["true"])
    with open(os.path.join(DATA, "docker-default-seccomp.json")) as f:
        cfg["linux"]["seccomp"] = json.load(f)
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]}
    cfg["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 4}
    return cfg


@pytest.fixture(scope="module")
def base():
    return _base()


@settings(max_examples=int(os.environ.get("OCIRT_CLI_FUZZ", "100")), deadline=None,
          database=None, suppress_health_check=list(HealthCheck))
@given(rnd=st.randoms(use_true_random=False))
def test_malformed_configs_through_the_cli(ocirt, base, rnd):
    b = ocirt.bundles[0] if ocirt.bundles else ocirt.bundle(["true"])  # one per test
    cfg = unit_fuzz.mutate(copy.deepcopy(base), rnd, [p for p in unit_fuzz._paths(base) if p])
    b.config = cfg
    b.write()
    cid = ocirt.new_id()
    r = ocirt.create(cid, b)
    assert r.returncode in (0, 1), r
    if r.returncode == 0:
        ocirt.delete(cid, "--force").ok()
    else:
        assert "Traceback" not in r.stderr, r
        assert len(error_lines(r.stderr)) == 1, r
    assert not ocirt.state_dirs(), f"left behind after {r!r}"
