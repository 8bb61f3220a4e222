"""Bad input: every failure exits 1 with ONE stderr line naming the JSON path (or
the id), no traceback, and leaves nothing behind (runtime.md Errors: "as if the
operation were never attempted"; the fixture checks mounts, processes, cgroups)."""
import json
import os

import pytest

from helpers import assert_error, oci_state


def _create_fails(ocirt, bundle, *needles):
    bundle.write()
    line = assert_error(ocirt.create(ocirt.new_id(), bundle), *needles)
    assert ocirt.state_dirs() == [], "a failed create left a state dir"
    return line


# --- the document ----------------------------------------------------------------------

def test_malformed_json(ocirt, bundle):
    bundle.write_raw('{"ociVersion": "1.2.0", "process": {')
    line = assert_error(ocirt.create(ocirt.new_id(), bundle), "config.json")
    assert ocirt.state_dirs() == []
    assert "JSON" in line or "json" in line


def test_config_not_an_object(ocirt, bundle):
    bundle.write_raw("[1, 2, 3]")
    assert_error(ocirt.create(ocirt.new_id(), bundle), "config.json")


def test_config_missing(ocirt, bundle):
    os.unlink(os.path.join(bundle.path, "config.json"))
    assert_error(ocirt.create(ocirt.new_id(), bundle), "config.json")
    assert ocirt.state_dirs() == []


def test_bundle_missing(ocirt):
    assert_error(ocirt.create(ocirt.new_id(), "/nonexistent/bundle/dir"), "config.json")
    assert ocirt.state_dirs() == []


@pytest.mark.parametrize("path,edit", [
    ("process.args[1]", lambda c: c["process"].__setitem__("args", ["echo", "a\0b"])),
    ("process.env[0]", lambda c: c["process"]["env"].insert(0, "A=b\0c")),
    ("mounts[1].options[0]", lambda c: c["mounts"][1]["options"].insert(0, "mode=07\x0055")),
    ("hostname", lambda c: c.__setitem__("hostname", "h\0st")),
])
def test_nul_in_a_string(ocirt, bundle, path, edit):
    """A NUL cuts a C string short: refused by its JSON path, not an empty line."""
    edit(bundle.config)
    line = _create_fails(ocirt, bundle, path, "NUL")
    assert line.strip() != "ocirt:"


def test_nul_in_an_exec_process_file(ocirt, bundle, tmp_path):
    cid = ocirt.new_id()
    bundle.args("sleep", "60").write()
    ocirt.create(cid, bundle).ok()
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"args": ["echo", "x\0y"], "cwd": "/"}))
    assert_error(ocirt("exec", "--process", str(p), cid), "process.args[1]", "NUL")
    ocirt.delete(cid, "--force").ok()


SCHEMA_CASES = [
    ("process.args", lambda c: c["process"].__setitem__("args", "sh -c true")),
    ("process.user.uid", lambda c: c["process"]["user"].__setitem__("uid", "root")),
    ("process.user.gid", lambda c: c["process"]["user"].__setitem__("gid", -1)),
    ("process.env[1]", lambda c: c["process"]["env"].insert(1, 42)),
    ("process.terminal", lambda c: c["process"].__setitem__("terminal", "no")),
    ("process.rlimits[0].soft", lambda c: c["process"]["rlimits"][0].__setitem__("soft", -5)),
    ("process.capabilities.bounding", lambda c: c["process"]["capabilities"].__setitem__(
        "bounding", "CAP_KILL")),
    ("root.path", lambda c: c["root"].__setitem__("path", 7)),
    ("hostname", lambda c: c.__setitem__("hostname", 12)),
    ("mounts[0].destination", lambda c: c["mounts"][0].pop("destination")),
    ("mounts[1].options", lambda c: c["mounts"][1].__setitem__("options", "ro")),
    ("linux.namespaces[0].type", lambda c: c["linux"]["namespaces"][0].__setitem__(
        "type", "bogus")),
    ("linux.devices[0].type", lambda c: c["linux"].__setitem__(
        "devices", [{"path": "/dev/x", "type": "z", "major": 1, "minor": 1}])),
    ("annotations", lambda c: c.__setitem__("annotations", {"k": 1})),
    ("linux.maskedPaths[0]", lambda c: c["linux"]["maskedPaths"].__setitem__(0, 3)),
    ("ociVersion", lambda c: c.pop("ociVersion")),
]


@pytest.mark.parametrize("path,mutate", SCHEMA_CASES, ids=[p for p, _ in SCHEMA_CASES])
def test_schema_violation(ocirt, bundle, path, mutate):
    mutate(bundle.config)
    _create_fails(ocirt, bundle, path)


@pytest.mark.parametrize("version", ["2.0.0", "0.9.0", "1.0", "latest"])
def test_unsupported_or_invalid_oci_version(ocirt, bundle, version):
    bundle.config["ociVersion"] = version
    _create_fails(ocirt, bundle, "ociVersion")


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0", "1.2.1", "1.3.0-rc.1"])
def test_supported_oci_versions(ocirt, bundle, version):
    bundle.config["ociVersion"] = version
    assert ocirt.run_sh(bundle, "true").returncode == 0


def test_relative_cwd(ocirt, bundle):
    bundle.process["cwd"] = "relative/dir"
    _create_fails(ocirt, bundle, "process.cwd")


def test_missing_rootfs(ocirt, bundle):
    bundle.config["root"]["path"] = "no-such-rootfs"
    _create_fails(ocirt, bundle, "root.path")


def test_rootfs_is_a_file(ocirt, bundle):
    with open(os.path.join(bundle.path, "afile"), "w") as f:
        f.write("x")
    bundle.config["root"]["path"] = "afile"
    _create_fails(ocirt, bundle, "root.path")


def test_missing_process(ocirt, bundle):
    del bundle.config["process"]
    _create_fails(ocirt, bundle, "process")


def test_empty_args(ocirt, bundle):
    bundle.process["args"] = []
    _create_fails(ocirt, bundle, "process.args")


# --- failures found late, inside init: still one line, nothing left ----------------------

def test_executable_not_found(ocirt, bundle):
    bundle.args("no-such-program", "x")
    line = _create_fails(ocirt, bundle, "process.args[0]")
    assert "no-such-program" in line


def test_executable_not_executable(ocirt, bundle):
    with open(os.path.join(bundle.rootfs, "bin/notexec"), "w") as f:
        f.write("#!/bin/sh\n")
    bundle.args("/bin/notexec")
    _create_fails(ocirt, bundle, "process.args[0]")


def test_cwd_not_a_directory(ocirt, bundle):
    bundle.process["cwd"] = "/etc/passwd"
    _create_fails(ocirt, bundle, "process.cwd")


def test_bind_source_missing(ocirt, bundle):
    bundle.config["mounts"].append({"destination": "/data", "type": "none",
                                    "source": "/nonexistent/source", "options": ["bind"]})
    idx = len(bundle.config["mounts"]) - 1
    _create_fails(ocirt, bundle, f"mounts[{idx}]")


def test_mount_unknown_fstype(ocirt, bundle):
    bundle.config["mounts"].append({"destination": "/data", "type": "nosuchfs",
                                    "source": "x"})
    idx = len(bundle.config["mounts"]) - 1
    _create_fails(ocirt, bundle, f"mounts[{idx}]")


def test_mount_bad_tmpfs_option(ocirt, bundle):
    bundle.config["mounts"].append({"destination": "/data", "type": "tmpfs",
                                    "source": "tmpfs", "options": ["size=notanumber"]})
    idx = len(bundle.config["mounts"]) - 1
    _create_fails(ocirt, bundle, f"mounts[{idx}]")


def test_failure_after_earlier_mounts_leaves_none(ocirt, bundle):
    """A late mount fails after others were made: every one is gone (fixture)."""
    src = os.path.join(bundle.path, "src")
    os.mkdir(src)
    bundle.config["mounts"] += [
        {"destination": "/ok1", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/ok2", "type": "none", "source": src, "options": ["rbind"]},
        {"destination": "/bad", "type": "nosuchfs", "source": "x"},
    ]
    _create_fails(ocirt, bundle, f"mounts[{len(bundle.config['mounts']) - 1}]")


def test_rlimit_raise_failure_in_init_leaves_nothing(ocirt, bundle):
    import resource
    _s, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with open("/proc/self/status") as f:
        if any(line.startswith("CapEff:") and int(line.split()[1], 16) & (1 << 24)
               for line in f):
            pytest.skip("this host has CAP_SYS_RESOURCE: raising a hard limit would succeed")
    bundle.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard + 1,
                                  "hard": hard + 1}]
    _create_fails(ocirt, bundle, "process.rlimits[0]")


def test_run_failure_leaves_nothing(ocirt, bundle):
    bundle.args("no-such-program").write()
    cid = ocirt.new_id()
    assert_error(ocirt.run(cid, bundle), "process.args[0]")
    assert ocirt.state_dirs() == []


# --- ids and states --------------------------------------------------------------------

@pytest.mark.parametrize("verb", ["state", "start", "kill", "delete"])
def test_unknown_id(ocirt, verb):
    cid = ocirt.new_id()
    line = assert_error(ocirt(verb, cid), cid)
    assert "does not exist" in line or "not found" in line


def test_id_in_use(ocirt):
    b = ocirt.bundle(["sleep", "600"])
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    assert_error(ocirt.create(cid, b), cid)
    assert ocirt.state_dirs() == [cid]
    ocirt.delete(cid, "--force").ok()


@pytest.mark.parametrize("cid", ["a/b", "..", ".", "bad\nid", "x" * 1025, "/abs"])
def test_invalid_id(ocirt, bundle, cid):
    r = ocirt.create(cid, bundle)
    assert_error(r, "id")
    assert ocirt.state_dirs() == []


def test_wrong_states(ocirt):
    """start twice, delete running without --force, kill stopped: each fails with
    one line naming the id and changes nothing."""
    b = ocirt.bundle(["sleep", "600"])
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    st = ocirt.state(cid)
    assert_error(ocirt.start(cid), cid)
    assert_error(ocirt.delete(cid), cid)
    assert oci_state(ocirt.state(cid)) == oci_state(st)
    ocirt.kill(cid, "KILL").ok()
    ocirt.wait_status(cid, "stopped")
    assert_error(ocirt.kill(cid, "TERM"), cid)
    assert_error(ocirt.start(cid), cid)
    ocirt.delete(cid).ok()


def test_error_written_to_json_log(ocirt, bundle, tmp_path):
    """Engines read the last error line of --log (json) as the failure message."""
    log = tmp_path / "log.json"
    bundle.process["cwd"] = "relative"
    bundle.write()
    r = ocirt.create(ocirt.new_id(), bundle,
                     global_flags=("--log", str(log), "--log-format", "json"))
    line = assert_error(r, "process.cwd")
    entries = [json.loads(x) for x in log.read_text().splitlines()]
    errors = [e for e in entries if e.get("level") == "error"]
    assert errors and "process.cwd" in errors[-1]["msg"]
    assert errors[-1]["msg"] in line
    assert "time" in errors[-1]


def test_unknown_properties_are_ignored(ocirt, bundle):
    """config.md Extensibility: runtimes MUST ignore unknown properties (and
    unknown annotation keys)."""
    bundle.config["x-unknown-top"] = {"any": ["thing", 1]}
    bundle.process["x-unknown-in-process"] = True
    bundle.linux["x-unknown-in-linux"] = "value"
    bundle.config["mounts"][0]["x-unknown-in-mount"] = 3
    bundle.config["annotations"] = {"com.example.unknown": "v", "org.opencontainers.x": "y"}
    assert ocirt.run_sh(bundle, "echo fine").ok().stdout == "fine\n"


def test_intel_rdt_without_resctrl_is_refused(ocirt, bundle):
    """This host has no resctrl: a config with linux.intelRdt is refused by name
    (runc: "Intel RDT is not supported or enabled"), nothing left behind."""
    with open("/proc/self/mountinfo") as f:
        if " - resctrl " in f.read():
            pytest.skip("resctrl is mounted here: the refusal needs a host without it")
    bundle.linux["intelRdt"] = {"closID": "ocirt-test", "l3CacheSchema": "L3:0=f"}
    _create_fails(ocirt, bundle, "linux.intelRdt", "not supported or enabled")
