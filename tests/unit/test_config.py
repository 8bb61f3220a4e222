"""ocirt.config: load + the checks a schema can't express, each failing with a
ConfigError whose path names the field."""
import copy
import json
import os

import pytest

from ocirt import config
from ocirt.errors import ConfigError
from ocirt.specgen import default_spec

BASE = default_spec()


def cfg(**top):
    c = copy.deepcopy(BASE)
    c.update(top)
    return c


def fails(c, path):
    with pytest.raises(ConfigError) as e:
        config.check(c)
    assert e.value.path == path or e.value.path.startswith(path), \
        f"expected {path}, got {e.value.path}: {e.value}"
    assert "\n" not in str(e.value)
    return e.value


def test_default_spec_is_valid():
    config.check(cfg())


def test_rootless_spec_is_valid():
    config.check(default_spec(rootless=True, uid=1000, gid=1000))


# --- load ---------------------------------------------------------------------------

def test_load(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(BASE))
    assert config.load(str(tmp_path)) == BASE


def test_load_missing(tmp_path):
    with pytest.raises(ConfigError, match="config.json does not exist"):
        config.load(str(tmp_path))


@pytest.mark.parametrize("text", ['{"ociVersion": ', "{,}", "nul", '{"a": 1} x', ""])
def test_load_invalid_json(tmp_path, text):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ConfigError) as e:
        config.load(str(tmp_path))
    assert "config.json is not valid JSON" in str(e.value)
    assert "SystemError" not in str(e.value)


def test_load_not_object(tmp_path):
    (tmp_path / "config.json").write_text("[]")
    with pytest.raises(ConfigError, match="JSON object"):
        config.load(str(tmp_path))


def test_load_bom(tmp_path):
    (tmp_path / "config.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(BASE).encode())
    assert config.load(str(tmp_path))["ociVersion"] == BASE["ociVersion"]


# --- semantics ---------------------------------------------------------------------------

@pytest.mark.parametrize("ver", ["2.0.0", "0.1.0", "10.0.0"])
def test_oci_version_major(ver):
    fails(cfg(ociVersion=ver), "ociVersion")


@pytest.mark.parametrize("ver", ["1.0.0", "1.0.2", "1.1.0", "1.2.0", "1.2.1", "1.3.0"])
def test_oci_version_1x(ver):
    config.check(cfg(ociVersion=ver))


def test_relative_cwd():
    c = cfg()
    c["process"]["cwd"] = "tmp"
    fails(c, "process.cwd")


def test_empty_args():
    c = cfg()
    c["process"]["args"] = []
    fails(c, "process.args")


def test_no_process_is_valid_config():
    c = cfg()
    del c["process"]
    config.check(c)


def test_duplicate_rlimit():
    c = cfg()
    c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                               {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
                               {"type": "RLIMIT_NOFILE", "soft": 2, "hard": 2}]
    fails(c, "process.rlimits[2]")


def test_duplicate_namespace():
    c = cfg()
    c["linux"]["namespaces"].append({"type": "pid"})
    fails(c, f"linux.namespaces[{len(c['linux']['namespaces']) - 1}]")


def test_namespace_path_relative():
    c = cfg()
    c["linux"]["namespaces"][0] = {"type": "pid", "path": "proc/1/ns/pid"}
    fails(c, "linux.namespaces[0].path")


def test_namespace_path_wrong_type():
    c = cfg()
    i = [n["type"] for n in c["linux"]["namespaces"]].index("network")
    c["linux"]["namespaces"][i] = {"type": "network", "path": "/proc/self/ns/uts"}
    e = fails(c, f"linux.namespaces[{i}].path")
    assert "not a network namespace" in str(e)


def test_namespace_path_not_a_namespace(tmp_path):
    f = tmp_path / "plain"
    f.write_text("x")
    c = cfg()
    c["linux"]["namespaces"][0] = {"type": "pid", "path": str(f)}
    fails(c, "linux.namespaces[0].path")


def test_namespace_path_missing():
    c = cfg()
    c["linux"]["namespaces"][0] = {"type": "pid", "path": "/no/such/ns"}
    fails(c, "linux.namespaces[0].path")


def test_namespace_path_right_type():
    c = cfg()
    i = [n["type"] for n in c["linux"]["namespaces"]].index("uts")
    c["linux"]["namespaces"][i] = {"type": "uts", "path": "/proc/self/ns/uts"}
    del c["hostname"]
    config.check(c)


@pytest.mark.parametrize("key", ["uidMappings", "gidMappings"])
def test_mappings_need_user_namespace(key):
    c = cfg()
    c["linux"][key] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    fails(c, f"linux.{key}")


def test_time_offsets_need_time_namespace():
    c = cfg()
    c["linux"]["timeOffsets"] = {"monotonic": {"secs": 10}}
    fails(c, "linux.timeOffsets")


@pytest.mark.parametrize("key", ["hostname", "domainname"])
def test_hostname_needs_uts_namespace(key):
    """Without a uts namespace setting it would rename the host."""
    c = cfg()
    c.pop("hostname")
    c[key] = "name"
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "uts"]
    fails(c, key)


@pytest.mark.parametrize("key,ok", [
    ("net.ipv4.ip_forward", True), ("kernel.shmmax", True), ("fs.mqueue.queues_max", True),
    ("kernel.domainname", True), ("vm.swappiness", False), ("kernel.panic", False),
])
def test_sysctl_namespaced_only(key, ok):
    c = cfg()
    c["linux"]["sysctl"] = {key: "1"}
    if ok:
        config.check(c)
    else:
        e = fails(c, "linux.sysctl")
        assert key in str(e)


def test_sysctl_needs_its_namespace():
    c = cfg()
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
    c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    e = fails(c, "linux.sysctl")
    assert "network" in str(e)


def test_propagation_needs_mount_namespace():
    """A read-only root without a mount namespace is allowed (init binds the rootfs
    onto itself); rootfsPropagation would change the host's mount."""
    c = cfg()
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "mount"]
    c["root"]["readonly"] = True
    config.check(c)
    c["linux"]["rootfsPropagation"] = "private"
    fails(c, "linux.rootfsPropagation")


def test_schema_errors_carry_paths():
    c = cfg()
    c["process"]["user"]["uid"] = "zero"
    fails(c, "process.user.uid")
    c = cfg()
    c["mounts"][2]["options"] = "ro"
    fails(c, "mounts[2].options")


def test_namespace_table():
    assert {t: n for t, (_f, n) in config.NAMESPACES.items()} == {
        "pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
        "user": "user", "cgroup": "cgroup", "time": "time"}
    for t, (_flag, name) in config.NAMESPACES.items():
        if os.path.exists(f"/proc/self/ns/{name}"):
            config._check_ns_path("x", f"/proc/self/ns/{name}", t)


def test_namespaces_helper():
    c = cfg()
    c["linux"]["namespaces"] = [{"type": "pid"}, {"type": "network", "path": "/x"}]
    assert config.namespaces(c) == [("pid", None), ("network", "/x")]


def test_resource_keys_in_any_case_as_go_reads_them(tmp_path):
    """runc reads JSON keys case-insensitively (Go): `pagesize` is pageSize, `CPU` cpu,
    `Cpus` cpus; unified file names keep their case."""
    import json
    from ocirt import config
    (tmp_path / "rootfs").mkdir()
    cfg = {"ociVersion": "1.2.0", "root": {"path": "rootfs"},
           "process": {"args": ["true"], "cwd": "/"},
           "linux": {"resources": {"hugepageLimits": [{"pagesize": "2MB", "limit": 1}],
                                   "cpu": {"shares": 100, "cpus": "1"},
                                   "CPU": {"Cpus": "0", "Mems": "0"},
                                   "unified": {"Memory.High": "1"}}}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    got = config.load(str(tmp_path))["linux"]["resources"]
    assert got["hugepageLimits"] == [{"pageSize": "2MB", "limit": 1}]
    assert got["cpu"] == {"shares": 100, "cpus": "0", "mems": "0"}  # merged, later wins
    assert got["unified"] == {"Memory.High": "1"}
