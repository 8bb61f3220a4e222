"""The runtime-spec version ocirt speaks (1.3.0) is the same everywhere it is said, and a
config's fields ocirt does not know are listed once in a warning, never dropped without
a word; the container still runs (engines send their own ociVersion)."""
import json
import os

from helpers import OCIRT, add_userns, assert_error

import subprocess
import tempfile

import pytest

VERSION = "1.3.0"


def warnings(stderr):
    return [ln for ln in stderr.splitlines() if "level=warning" in ln]


def test_every_document_says_the_same_version(ocirt, bundle):
    feats = json.loads(ocirt("features").ok().stdout)
    assert feats["ociVersionMax"] == VERSION
    lx = feats["linux"]  # the 1.3 fields, each implemented (tests/conformance/test_*.py)
    assert lx["netDevices"] == {"enabled": True}
    assert lx["intelRdt"] == {"enabled": True, "schemata": True, "monitoring": True}
    assert "MPOL_WEIGHTED_INTERLEAVE" in lx["memoryPolicy"]["modes"]
    assert "MPOL_F_NUMA_BALANCING" in lx["memoryPolicy"]["flags"]
    assert f"spec: {VERSION}" in ocirt("--version").ok().stdout
    with tempfile.TemporaryDirectory() as d:
        spec = subprocess.run([OCIRT, "spec", "--bundle", d], capture_output=True, text=True)
        assert spec.returncode == 0, spec.stderr
        with open(f"{d}/config.json") as f:
            assert json.load(f)["ociVersion"] == VERSION
    bundle.args("sleep", "600").write()
    cid = ocirt.new_id()
    ocirt.create(cid, bundle).ok()
    assert ocirt.state(cid)["ociVersion"] == VERSION
    ocirt.delete(cid, "--force").ok()


def test_known_fields_give_no_warning(ocirt, bundle):
    bundle.linux["memoryPolicy"] = {"mode": "MPOL_DEFAULT"}
    bundle.write()
    r = ocirt.run(ocirt.new_id(), bundle).ok()
    assert warnings(r.stderr) == []


def test_unknown_fields_are_listed_once_and_the_container_runs(ocirt, bundle):
    bundle.config["ociVersion"] = "1.4.0"
    bundle.linux["futureThing"] = {"on": True}
    bundle.config["process"]["user"]["colour"] = "blue"
    bundle.config["mounts"][0]["newOption"] = 1
    bundle.args("sh", "-c", "echo ran").write()
    for _ in range(2):  # the second run takes the schema verdict from the cache
        r = ocirt.run(ocirt.new_id(), bundle).ok()
        assert r.stdout.strip() == "ran"
        w = warnings(r.stderr)
        assert len(w) == 1, r.stderr
        assert "ociVersion 1.4.0 is newer than ocirt's 1.3.0" in w[0]
        for field in ("process.user.colour", "mounts[0].newOption", "linux.futureThing"):
            assert field in w[0]


def test_an_unknown_limit_is_refused_not_warned_about(ocirt, bundle):
    bundle.linux.setdefault("resources", {}).setdefault("memory", {})["newKnob"] = 1
    bundle.write()
    assert_error(ocirt.run(ocirt.new_id(), bundle), "linux.resources.memory.newKnob")
    assert ocirt.state_dirs() == []


def test_an_unknown_field_in_an_older_config_is_named_too(ocirt, bundle):
    bundle.config["ociVersion"] = "1.0.2"
    bundle.config["root"]["readOnly"] = True  # a typo of readonly: said, not silently dropped
    bundle.write()
    r = ocirt.run(ocirt.new_id(), bundle).ok()
    w = warnings(r.stderr)
    assert len(w) == 1 and "root.readOnly" in w[0] and "newer" not in w[0], r.stderr


def test_mount_label_without_selinux_is_said(ocirt, bundle):
    if os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("this host has SELinux: the label is applied (context= on tmpfs)")
    bundle.linux["mountLabel"] = "system_u:object_r:container_file_t:s0"
    bundle.write()
    r = ocirt.run(ocirt.new_id(), bundle).ok()
    w = warnings(r.stderr)
    assert len(w) == 1 and "linux.mountLabel: SELinux is not enabled" in w[0], r.stderr


@pytest.mark.parametrize("clock", ["realtime", "bogus"])
def test_a_clock_no_time_namespace_offsets_is_refused(ocirt, bundle, clock):
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.linux["timeOffsets"] = {"monotonic": {"secs": 10}, clock: {"secs": 100}}
    bundle.write()
    assert_error(ocirt.run(ocirt.new_id(), bundle), f"linux.timeOffsets.{clock}")
    assert ocirt.state_dirs() == []


def test_data_options_on_a_bind_mount_are_said(ocirt, bundle, tmp_path):
    bundle.config["mounts"].append({"destination": "/mnt", "type": "bind",
                                    "source": str(tmp_path), "options": ["rbind", "size=1m"]})
    bundle.write()
    r = ocirt.run(ocirt.new_id(), bundle).ok()
    w = warnings(r.stderr)
    assert len(w) == 1 and "size=1m has no effect on a bind mount" in w[0], r.stderr


def test_device_mode_in_a_user_namespace_is_said(ocirt, bundle):
    add_userns(bundle)
    bundle.linux["devices"] = [{"path": "/dev/fuse2", "type": "c", "major": 10,
                                "minor": 229, "fileMode": 0o600, "uid": 5, "gid": 6}]
    bundle.write()
    r = ocirt.run(ocirt.new_id(), bundle)
    w = warnings(r.stderr)
    assert any("linux.devices[0]: fileMode, uid, gid not applied" in ln for ln in w), r.stderr
