"""The content-keyed cache (ocirt.config.cache_get/cache_put): schema verdicts of
config.json and compiled seccomp programs."""
import json
import os

import pytest

from ocirt import config, seccomp
from ocirt.errors import ConfigError

HERE = os.path.dirname(os.path.abspath(__file__))
DOCKER = os.path.join(os.path.dirname(HERE), "conformance", "data",
                      "docker-default-seccomp.json")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("OCIRT_CACHE_DIR", str(d))
    monkeypatch.setattr(config, "_cache_ok", None)
    return d


def test_put_get_roundtrip(cache):
    assert config.cache_get("t", b"k") is None
    config.cache_put("t", b"k", b"payload\nwith newline")
    assert config.cache_get("t", b"k") == b"payload\nwith newline"
    assert config.cache_get("t", b"other") is None
    assert oct(os.stat(cache).st_mode & 0o777) == "0o700"


def test_the_cache_is_bounded_and_a_slot_answers_only_its_key(cache):
    for i in range(2000):
        config.cache_put("t", b"key %d" % i, b"v%d" % i)
    assert len(list(cache.iterdir())) <= 256
    hits = [i for i in range(2000) if config.cache_get("t", b"key %d" % i) is not None]
    assert 0 < len(hits) <= 256
    for i in hits:
        assert config.cache_get("t", b"key %d" % i) == b"v%d" % i


def test_torn_or_tampered_entry_is_a_miss(cache):
    config.cache_put("t", b"k", b"payload")
    (entry,) = list(cache.iterdir())
    data = entry.read_bytes()
    entry.write_bytes(data[:-2])
    assert config.cache_get("t", b"k") is None
    entry.write_bytes(data.replace(b"payload", b"pAyload"))
    assert config.cache_get("t", b"k") is None


def test_untrusted_dir_is_not_used(cache, monkeypatch):
    cache.mkdir(mode=0o777)
    os.chmod(cache, 0o777)
    config.cache_put("t", b"k", b"payload")
    assert list(cache.iterdir()) == []
    monkeypatch.setattr(config, "_cache_ok", None)
    assert config.cache_get("t", b"k") is None


def test_disabled(monkeypatch):
    monkeypatch.setenv("OCIRT_CACHE_DIR", "")
    monkeypatch.setattr(config, "_cache_ok", None)
    assert config.cache_dir() is None
    config.cache_put("t", b"k", b"x")
    assert config.cache_get("t", b"k") is None


def _bundle(tmp_path, cfg):
    b = tmp_path / "bundle"
    b.mkdir(exist_ok=True)
    (b / "config.json").write_text(json.dumps(cfg))
    return str(b)


CFG = {"ociVersion": "1.2.0", "root": {"path": "rootfs"},
       "process": {"args": ["/bin/true"], "cwd": "/"}}


def test_schema_verdict_cached_semantics_always_checked(cache, tmp_path, monkeypatch):
    b = _bundle(tmp_path, CFG)
    assert config.load(b) == CFG
    calls = []
    from ocirt import schema
    monkeypatch.setattr(schema, "validate", lambda *a: calls.append(a))
    assert config.load(b) == CFG
    assert calls == []  # a hit: the schema is not walked again
    # any change of the bytes is a miss
    cfg2 = dict(CFG, hostname="x")
    b = _bundle(tmp_path, cfg2)
    with pytest.raises(ConfigError):  # the semantic check (no uts namespace) still runs
        config.load(b)
    assert len(calls) == 1


def test_invalid_config_never_cached(cache, tmp_path):
    bad = dict(CFG, process={"args": "not-a-list", "cwd": "/"})
    b = _bundle(tmp_path, bad)
    for _ in range(2):
        with pytest.raises(ConfigError) as e:
            config.load(b)
        assert "process.args" in str(e.value)


def test_seccomp_program_cached(cache):
    with open(DOCKER) as f:
        spec = json.load(f)
    spec["syscalls"].append({"names": ["no_such_syscall_xyz"], "action": "SCMP_ACT_ALLOW"})
    warned = []
    orig = seccomp._warn
    seccomp._warn = warned.append
    try:
        fresh = seccomp.build_filter(spec)
        assert any(name.startswith("seccomp-") for name in os.listdir(cache))
        hit = seccomp.build_filter(spec)
    finally:
        seccomp._warn = orig
    assert hit.prog == fresh.prog and hit.flags == fresh.flags
    # logged on the hit too, in the same order
    assert len(warned) % 2 == 0 and warned[:len(warned) // 2] == warned[len(warned) // 2:]
    assert any("no_such_syscall_xyz" in w for w in warned[len(warned) // 2:])
    # a different profile is a different entry
    spec["defaultAction"] = "SCMP_ACT_KILL_PROCESS"
    del spec["defaultErrnoRet"]
    other = seccomp.build_filter(spec)
    assert other.prog != fresh.prog
