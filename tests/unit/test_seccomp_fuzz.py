"""Fuzzing (hypothesis) of config.json parsing and of the seccomp translation, in
process: thousands of malformed inputs, each either accepted or refused with a
ConfigError/OcirtError whose message is one line naming the field; never another
exception. (tests/conformance/test_seccomp_fuzz.py runs a sample through the CLI.)
OCIRT_FUZZ=N sets the number of examples (default 2000 per test)."""
import copy
import json
import os

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from ocirt import config, seccomp  # noqa: E402
from ocirt.errors import ConfigError, OcirtError  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "data", "runc-spec.json")) as _f:
    RUNC_SPEC = json.load(_f)
with open(os.path.join(os.path.dirname(HERE), "conformance", "data",
                       "docker-default-seccomp.json")) as _f:
    DOCKER = json.load(_f)

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), database=None)

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                      st.floats(allow_nan=False), st.text(max_size=12))
json_any = st.recursive(json_leaf, lambda c: st.one_of(
    st.lists(c, max_size=4), st.dictionaries(st.text(max_size=10), c, max_size=4)),
    max_leaves=12)

ACTIONS = list(seccomp.ACTIONS)
names = st.one_of(st.sampled_from(["mkdir", "read", "write", "sendmsg", "clone", "socket",
                                   "personality", "no_such_call", "", "x" * 300]),
                  st.text(max_size=8), json_leaf)
maybe = lambda s: st.one_of(s, json_leaf)  # noqa: E731
arg = st.fixed_dictionaries({}, optional={
    "index": maybe(st.integers(-1, 8)), "value": maybe(st.integers(-1, 2**64)),
    "valueTwo": maybe(st.integers(-1, 2**64)),
    "op": maybe(st.sampled_from(list(seccomp.OPERATORS) + ["SCMP_CMP_X"]))})
syscall = st.fixed_dictionaries({}, optional={
    "names": maybe(st.lists(names, max_size=4)),
    "action": maybe(st.sampled_from(ACTIONS + ["SCMP_ACT_X"])),
    "errnoRet": maybe(st.integers(-5, 70000)),
    "args": maybe(st.lists(maybe(arg), max_size=7))})
seccomp_spec = st.fixed_dictionaries({}, optional={
    "defaultAction": maybe(st.sampled_from(ACTIONS + ["SCMP_ACT_X"])),
    "defaultErrnoRet": maybe(st.integers(-5, 70000)),
    "architectures": maybe(st.lists(maybe(st.sampled_from(list(seccomp.ARCHES) +
                                                          ["SCMP_ARCH_X"])), max_size=4)),
    "flags": maybe(st.lists(maybe(st.sampled_from(list(seccomp.FLAGS) + ["F"])),
                            max_size=3)),
    "listenerPath": maybe(st.sampled_from(["/run/agent.sock", "rel", ""])),
    "listenerMetadata": json_leaf,
    "syscalls": maybe(st.lists(maybe(syscall), max_size=5))})


def _check_error(e, prefix):
    msg = str(e)
    assert "\n" not in msg, msg
    if isinstance(e, ConfigError):
        assert e.path.startswith(prefix) or e.path == "", (e.path, msg)


@settings(max_examples=int(os.environ.get("OCIRT_FUZZ", "2000")), **SETTINGS)
@given(seccomp_spec)
def test_seccomp_translation_never_crashes(spec):
    try:
        f = seccomp.build_filter(spec)
    except ConfigError as e:
        _check_error(e, "linux.seccomp")
        return
    assert len(f.prog) % 8 == 0


@settings(max_examples=int(os.environ.get("OCIRT_FUZZ", "2000")) // 4, **SETTINGS)
@given(json_any)
def test_seccomp_translation_of_any_json(spec):
    try:
        seccomp.build_filter(spec)
    except ConfigError as e:
        _check_error(e, "linux.seccomp")


# --- config.json parsing: a valid config with one part replaced ---------------------------

def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def _base():
    cfg = copy.deepcopy(RUNC_SPEC)
    # a small profile with every kind of part (Docker's whole one is slow to build
    # thousands of times; it is fuzzed through the translation tests above)
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [dict(DOCKER["syscalls"][0], names=DOCKER["syscalls"][0]["names"][:8]),
                     {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                     {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                                "op": "SCMP_CMP_MASKED_EQ"}]},
                     {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    cfg["hooks"] = {"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 3}]}
    cfg["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 4}
    cfg["process"]["scheduler"] = {"policy": "SCHED_OTHER", "nice": 0}
    cfg["process"]["execCPUAffinity"] = {"initial": "0", "final": "0"}
    return cfg


BASE = _base()
ALL_PATHS = [p for p in _paths(BASE) if p]


_TEXTS = ["", "x", "/", "/abs/path", "relative", "SCMP_ACT_ALLOW", "CAP_SYS_ADMIN",
          "RLIMIT_NOFILE", "SCHED_FIFO", "\u00e9\u0000", "0-3,7", "a" * 70]


def _random_json(rnd, depth=0):
    k = rnd.randrange(9 if depth < 3 else 6)
    if k == 0:
        return None
    if k == 1:
        return rnd.random() < 0.5
    if k == 2:
        return rnd.choice([0, 1, -1, 7, 2**31, 2**63, 2**64, -2**63 - 1, 10**30])
    if k == 3:
        return rnd.choice([0.5, 1.0, -2.5, 1e300])
    if k in (4, 5):
        return rnd.choice(_TEXTS)
    if k in (6, 7):
        return [_random_json(rnd, depth + 1) for _ in range(rnd.randrange(4))]
    return {rnd.choice(_TEXTS + ["type", "path", "names", "action"]): _random_json(rnd, depth + 1)
            for _ in range(rnd.randrange(4))}


def mutate(cfg, rnd, paths=None):
    """Replace, delete or add at 1-3 random places of a valid config (in place)."""
    paths = paths or ALL_PATHS
    for _ in range(rnd.randint(1, 3)):
        path = rnd.choice(paths)
        parent = cfg
        try:
            for k in path[:-1]:
                parent = parent[k]
            key = path[-1]
            parent[key]  # noqa: B018 - still there after earlier mutations?
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, (dict, list)):  # an earlier mutation left a string here
            continue
        how = rnd.choice(["replace", "replace", "delete", "add"])
        if how == "delete":
            del parent[key]
        elif how == "add" and isinstance(parent[key], dict):
            parent[key][rnd.choice(_TEXTS)] = _random_json(rnd)
        elif how == "add" and isinstance(parent[key], list):
            parent[key].append(_random_json(rnd))
        else:
            parent[key] = _random_json(rnd)
    return cfg


def preflight(cfg):
    """What `create` checks before it forks: the config, then the security parts."""
    config.check(cfg)
    from ocirt.lifecycle.create import _prepare_security
    from ocirt.process.launcher import InitContext
    ctx = InitContext(cfg, "/nonexistent-bundle", "/nonexistent-bundle/rootfs", {})
    _prepare_security(ctx)


@settings(max_examples=int(os.environ.get("OCIRT_FUZZ", "2000")), **SETTINGS)
@given(st.randoms(use_true_random=False))
def test_config_parsing_never_crashes(rnd):
    cfg = mutate(copy.deepcopy(BASE), rnd)
    try:
        preflight(cfg)
    except OcirtError as e:
        _check_error(e, "")
        if isinstance(e, ConfigError):
            assert e.path is not None
