"""The runc-compatible command line: global flags, flag forms, spec, list,
state, features, version, help, kill --all, delete of several ids."""
import json
import os
import subprocess

import pytest

from helpers import OCIRT, REPO_SPEC, assert_error, pid_alive

SLEEP = ["sleep", "600"]


def _schema(name):
    jsonschema = pytest.importorskip("jsonschema")
    with open(os.path.join(REPO_SPEC, f"{name}-schema.json")) as f:
        return jsonschema, json.load(f)


def _plain(*args, cwd=None):
    return subprocess.run([OCIRT, *args], capture_output=True, text=True, timeout=30, cwd=cwd)


# --- version, help, unknown input --------------------------------------------------

def test_version():
    """go-runc parses `<name> version X`, `spec: Y`."""
    p = _plain("--version")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert lines[0].startswith("ocirt version ")
    assert lines[1].startswith("commit: ") and lines[2].startswith("spec: 1.")
    assert _plain("-v").stdout == p.stdout


def test_help():
    p = _plain("--help")
    assert p.returncode == 0
    for verb in ("create", "start", "state", "kill", "delete", "run", "list", "spec"):
        assert verb in p.stdout


VERBS = ("checkpoint", "create", "delete", "events", "exec", "kill", "list", "pause", "ps",
         "restore", "resume", "run", "spec", "start", "state", "update", "features")


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_verb_has_help(flag):
    """runc's (urfave/cli) help page for each verb: NAME:, then `ocirt VERB - ...`;
    the verb's flags listed; exit 0, nothing run."""
    for verb in VERBS:
        p = _plain(verb, flag)
        assert p.returncode == 0, (verb, p)
        lines = p.stdout.splitlines()
        assert lines[0] == "NAME:" and lines[1].startswith(f"   ocirt {verb} - "), (verb, p)
    assert "--bundle" in _plain("run", flag).stdout
    assert "--pid-file" in _plain("create", flag).stdout
    assert "--force" in _plain("delete", flag).stdout


def test_help_of_an_unknown_command():
    p = _plain("foo", "-h")
    assert p.returncode == 1 and "No help topic for 'foo'" in p.stderr
    assert _plain("help", "run").stdout == _plain("run", "--help").stdout


def test_checkpoint_and_restore_are_refused(ocirt, bundle):
    """No CRIU support: each verb refused in one line, the container left running."""
    cid = ocirt.new_id()
    bundle.args("sleep", "60").write()
    ocirt.create(cid, bundle).ok()
    ocirt.start(cid).ok()
    line = assert_error(ocirt("checkpoint", "--image-path", "/tmp/nowhere", cid),
                        "checkpoint is not supported")
    assert "left as it was" in line
    assert_error(ocirt("checkpoint", "--parent-path", "/abs", cid), "--parent-path")
    assert_error(ocirt("restore", "--bundle", bundle.path, cid), "restore is not supported")
    assert_error(ocirt("checkpoint", "nosuch-" + ocirt.marker), "does not exist")
    assert ocirt.status(cid) == "running"
    ocirt.delete(cid, "--force").ok()


def test_unknown_command(ocirt):
    assert_error(ocirt("frobnicate"), "frobnicate")


def test_unknown_global_flag(ocirt):
    assert_error(ocirt("list", global_flags=("--no-such-flag",)), "no-such-flag")


def test_unknown_command_flag(ocirt, bundle):
    assert_error(ocirt("create", "--no-such-flag", "--bundle", bundle.path, ocirt.new_id()),
                 "no-such-flag")
    assert ocirt.state_dirs() == []


def test_flag_missing_value(ocirt):
    assert_error(ocirt("create", "--bundle"), "bundle")


# --- flag forms ------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["--bundle", "-b", "--bundle=", "-bundle"])
def test_bundle_flag_forms(ocirt, bundle, form):
    cid = ocirt.new_id()
    args = [form + bundle.path] if form.endswith("=") else [form, bundle.path]
    ocirt("run", *args, cid).ok()


def test_root_flag_with_equals(ocirt, bundle):
    cid = ocirt.new_id()
    argv = [OCIRT, f"--root={ocirt.root}", "create", "--bundle", bundle.path, cid]
    bundle.args(*SLEEP).write()
    # no pipes: the container inherits create's stdio and would keep them open
    p = subprocess.run(argv, env=ocirt.env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 0
    assert ocirt.state_dirs() == [cid]
    ocirt.delete(cid, "--force").ok()


def test_root_is_per_flag(ocirt, bundle, tmp_path):
    """Containers live under --root: another root does not see them."""
    bundle.args(*SLEEP).write()
    cid = ocirt.new_id()
    ocirt.create(cid, bundle).ok()
    other = subprocess.run([OCIRT, "--root", str(tmp_path / "other"), "state", cid],
                           capture_output=True, text=True)
    assert other.returncode == 1 and cid in other.stderr
    ocirt.delete(cid, "--force").ok()


def test_bundle_defaults_to_cwd(ocirt, bundle):
    cid = ocirt.new_id()
    ocirt("run", cid, cwd=bundle.path).ok()


def test_debug_and_log_flags_accepted(ocirt, bundle, tmp_path):
    log = tmp_path / "log.txt"
    cid = ocirt.new_id()
    ocirt("run", "--bundle", bundle.path, cid,
          global_flags=("--debug", "--log", str(log), "--log-format", "text")).ok()


RUN_DEBUG = ("nsexec container setup", "child process in init()",
             "init: closing the pipe to signal completion")
EXEC_DEBUG = ("nsexec container setup", "child process in init()", "setns_init: about to exec")


@pytest.mark.parametrize("fmt", [None, "text", "json"])
def test_debug_lines_of_run_and_exec(ocirt, bundle, tmp_path, fmt):
    """--debug: the set-up's steps as debug lines (init's reach the parent), with the
    phrases runc's suite and users grep for; on stderr without --log, else only in
    the log file (json lines compact, as Go writes them)."""
    log = tmp_path / "log"
    flags = ("--debug",) + (("--log", str(log), "--log-format", fmt) if fmt else ())
    cid = ocirt.new_id()
    bundle.args("sleep", "600").write()
    r = ocirt("run", "-d", "--bundle", bundle.path, cid, global_flags=flags).ok()
    e = ocirt("exec", cid, "true", global_flags=flags).ok()
    if fmt is None:
        out, out2 = r.stderr, e.stderr
        assert "level=debug" in out
    else:
        assert "debug" not in r.stderr + e.stderr
        out = out2 = log.read_text()
        assert ('"level":"debug"' if fmt == "json" else "level=debug") in out
    for phrase in RUN_DEBUG:
        assert phrase in out, phrase
    for phrase in EXEC_DEBUG:
        assert phrase in out2, phrase
    ocirt.delete(cid, "--force").ok()


def test_list_format_json_is_compact(ocirt, bundle):
    cid = ocirt.new_id()
    bundle.args("sleep", "600").write()
    ocirt.create(cid, bundle).ok()
    out = ocirt("list", "--format", "json").ok().stdout
    assert out.startswith('[{"ociVersion":"') and ", " not in out, out
    assert list(json.loads(out)[0])[:7] == ["ociVersion", "id", "pid", "status", "bundle",
                                           "rootfs", "created"]
    assert json.loads(out)[0]["owner"] == "root"
    ocirt.delete(cid, "--force").ok()


def test_list_with_a_root_that_is_not_there_fails(tmp_path):
    p = _plain("--root", str(tmp_path / "nowhere"), "list")
    assert p.returncode == 1 and "nowhere" in p.stderr


def test_log_text_format_error(ocirt, tmp_path):
    log = tmp_path / "log.txt"
    cid = ocirt.new_id()
    assert_error(ocirt("state", cid, global_flags=("--log", str(log))), cid)
    text = log.read_text()
    assert "level=error" in text and cid in text


def test_invalid_log_format(ocirt):
    assert_error(ocirt("list", global_flags=("--log-format", "yaml")), "log-format")


def test_no_new_keyring_accepted(ocirt, bundle):
    ocirt("run", "--no-new-keyring", "--bundle", bundle.path, ocirt.new_id()).ok()


# --- spec ---------------------------------------------------------------------------

def test_spec_writes_valid_config(tmp_path):
    p = _plain("spec", "--bundle", str(tmp_path))
    assert p.returncode == 0, p.stderr
    cfg = json.loads((tmp_path / "config.json").read_text())
    jsonschema, schema = _schema("config")
    jsonschema.validate(cfg, schema)
    assert cfg["ociVersion"].startswith("1.")
    assert cfg["root"]["path"] == "rootfs"
    assert cfg["process"]["args"] == ["sh"]
    types = {n["type"] for n in cfg["linux"]["namespaces"]}
    assert {"pid", "network", "ipc", "uts", "mount"} <= types


def test_spec_in_cwd(tmp_path):
    assert _plain("spec", cwd=str(tmp_path)).returncode == 0
    assert (tmp_path / "config.json").exists()


def test_spec_refuses_to_overwrite(tmp_path):
    (tmp_path / "config.json").write_text("keep")
    p = _plain("spec", "-b", str(tmp_path))
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1
    assert "config.json" in p.stderr
    assert (tmp_path / "config.json").read_text() == "keep"


def test_spec_rootless(tmp_path):
    p = _plain("spec", "--rootless", "-b", str(tmp_path))
    assert p.returncode == 0, p.stderr
    cfg = json.loads((tmp_path / "config.json").read_text())
    types = {n["type"] for n in cfg["linux"]["namespaces"]}
    assert "user" in types and "network" not in types
    assert cfg["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(),
                                            "size": 1}]
    assert cfg["linux"]["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(),
                                            "size": 1}]
    assert "resources" not in cfg["linux"]


# --- features ---------------------------------------------------------------------------

def test_features():
    p = _plain("features")
    assert p.returncode == 0
    feats = json.loads(p.stdout)
    jsonschema, schema = _schema("features")
    jsonschema.validate(feats, schema)
    assert feats["ociVersionMin"].startswith("1.")
    assert set(feats["linux"]["namespaces"]) >= {"pid", "network", "ipc", "uts", "mount",
                                                 "user", "cgroup"}
    assert "CAP_SYS_ADMIN" in feats["linux"]["capabilities"]


# --- state and list -----------------------------------------------------------------------

def test_state_output_is_json_object(ocirt, bundle):
    bundle.args(*SLEEP).write()
    cid = ocirt.new_id()
    ocirt.create(cid, bundle).ok()
    r = ocirt("state", cid).ok()
    st = json.loads(r.stdout)
    assert st["id"] == cid and st["status"] == "created"
    jsonschema, schema = _schema("state")
    jsonschema.validate(st, schema)
    ocirt.delete(cid, "--force").ok()


def test_list_empty(ocirt):
    assert ocirt("list", "-q").ok().stdout == ""
    assert json.loads(ocirt("list", "-f", "json").ok().stdout) in ([], None)
    table = ocirt("list").ok().stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "PID", "STATUS"]
    assert len(table) == 1


def test_list(ocirt, bundle):
    bundle.args(*SLEEP).write()
    a, b = ocirt.new_id(), ocirt.new_id()
    ocirt.create(a, bundle).ok()
    ocirt.create(b, bundle).ok()
    ocirt.start(b).ok()
    assert sorted(ocirt("list", "-q").ok().lines) == sorted([a, b])
    items = {s["id"]: s for s in json.loads(ocirt("list", "--format", "json").ok().stdout)}
    assert items[a]["status"] == "created" and items[b]["status"] == "running"
    assert items[a]["bundle"] == bundle.path
    assert items[a]["pid"] == ocirt.state(a)["pid"]
    rows = {line.split()[0]: line.split() for line in ocirt("list").ok().lines[1:]}
    assert rows[a][2] == "created" and rows[b][2] == "running"
    assert rows[b][1] == str(ocirt.state(b)["pid"])
    ocirt.delete(a, "--force").ok()
    ocirt.delete(b, "--force").ok()


def test_list_bad_format(ocirt):
    assert_error(ocirt("list", "-f", "xml"), "xml")


# --- kill --all, delete several --------------------------------------------------------------

def test_kill_all(ocirt, bundle):
    """--all signals every process of the container, not only init."""
    bundle.sh("sleep 600 & sleep 600 & wait").write()
    cid = ocirt.new_id()
    ocirt.create(cid, bundle).ok()
    ocirt.start(cid).ok()
    pid = ocirt.state(cid)["pid"]

    def children():
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []
    from helpers import wait_for
    kids = wait_for(lambda: len(children()) == 2 and children(), what="two sleeps")
    ocirt("kill", "--all", cid, "KILL").ok()
    ocirt.wait_status(cid, "stopped")
    wait_for(lambda: not any(pid_alive(k) for k in kids), what="children to die")
    ocirt.delete(cid).ok()


def test_kill_all_flag_before_id(ocirt, bundle):
    bundle.args(*SLEEP).write()
    cid = ocirt.new_id()
    ocirt.create(cid, bundle).ok()
    ocirt.start(cid).ok()
    ocirt("kill", "--all", cid, "9").ok()
    ocirt.wait_status(cid, "stopped")
    ocirt.delete(cid).ok()


def test_delete_several_ids(ocirt, bundle):
    bundle.args(*SLEEP).write()
    ids = [ocirt.new_id() for _ in range(2)]
    for cid in ids:
        ocirt.create(cid, bundle).ok()
    ocirt("delete", "--force", *ids).ok()
    assert ocirt.state_dirs() == []


def test_delete_force_unknown_id(ocirt):
    """runc: `delete --force` of an unknown id succeeds (engines clean up with it);
    without --force it is an error naming the id."""
    cid = ocirt.new_id()
    ocirt.delete(cid, "--force").ok()
    assert_error(ocirt.delete(cid), cid)
