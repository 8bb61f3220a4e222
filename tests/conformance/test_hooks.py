"""Hooks (config.md "POSIX-platform Hooks", runtime.md "Lifecycle"): every phase
runs at its moment, in its namespace, with path/args/env/timeout and the state on
stdin; failures stop the container and leave nothing behind (a poststart failure too,
since runtime-spec 1.1), except poststop failures, which are warnings. Errors name
the hook as hooks.<phase>[i], then in runc's words (error running <phase> hook #i)."""
import json
import os
import time

import pytest

from helpers import assert_error, pid_alive, proc_cmdline

PHASES = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
          "poststop"]

# Run as busybox with args[0] "sh" (so a hook runs at all only if args[0] is its
# argv[0]); appends one line per call: phase ($0), argv[0] as busybox saw it, an
# env var, one of ocirt's (unset: env replaces the environment), the mount and pid
# namespaces and the state read from stdin.
HOOK = ('state=$(cat); echo "$0|$(tr "\\0" "\\n" < /proc/$$/cmdline | head -n1)|$HOOK_VAR|'
        '${OCIRT_TEST_MARKER:-unset}|$(readlink /proc/self/ns/mnt)|'
        '$(readlink /proc/self/ns/pid)|$state" >> "$1"')
BUSYBOX = "/bin/busybox"


@pytest.fixture
def hooked(ocirt, tmp_path):
    """A bundle whose every hook logs to <tmp>/log/hooks.log (bind-mounted at /log
    in the container, where startContainer and the process write)."""
    logdir = tmp_path / "log"
    logdir.mkdir()
    b = ocirt.bundle(["sh", "-c", "echo \"process|$(readlink /proc/self/ns/mnt)\" >> "
                      "/log/hooks.log"])
    b.config["mounts"].append({"destination": "/log", "type": "bind", "source": str(logdir),
                               "options": ["rbind", "rw"]})
    hooks = {}
    for ph in PHASES:
        in_container = ph == "startContainer"
        log = "/log/hooks.log" if in_container else str(logdir / "hooks.log")
        hooks[ph] = [{"path": BUSYBOX, "args": ["sh", "-c", HOOK, ph, log],
                      "env": [f"HOOK_VAR=v-{ph}"]}]
    b.config["hooks"] = hooks
    b.write()
    b.log = logdir / "hooks.log"
    return b


def read_log(path):
    out = []
    for line in path.read_text().splitlines():
        parts = line.split("|", 6)
        if parts[0] == "process":
            out.append({"phase": "process", "mnt": parts[1]})
            continue
        phase, argv0, var, path_, mnt, pidns, state = parts
        out.append({"phase": phase, "argv0": argv0, "var": var, "path": path_, "mnt": mnt,
                    "pidns": pidns, "state": json.loads(state)})
    return out


def test_every_phase_in_order_namespace_and_state(ocirt, hooked):
    cid = ocirt.new_id()
    ocirt.create(cid, hooked).ok()
    init = ocirt.state(cid)["pid"]
    created = read_log(hooked.log)
    assert [e["phase"] for e in created] == ["prestart", "createRuntime", "createContainer"]
    ocirt.start(cid).ok()
    ocirt.wait_status(cid, "stopped")
    ocirt.delete(cid).ok()
    log = read_log(hooked.log)
    assert [e["phase"] for e in log] == PHASES[:4] + ["process", "poststart", "poststop"] \
        or [e["phase"] for e in log] == PHASES[:4] + ["poststart", "process", "poststop"]
    host_mnt = os.readlink("/proc/self/ns/mnt")
    host_pid = os.readlink("/proc/self/ns/pid")
    by = {e["phase"]: e for e in log}
    for ph in ("prestart", "createRuntime", "poststart", "poststop"):
        assert by[ph]["mnt"] == host_mnt, f"{ph} runs in the runtime namespace"
        # create forks init into the new pid namespace itself, then takes it back
        assert by[ph]["pidns"] == host_pid, f"{ph} runs in the runtime's pid namespace"
    for ph in ("createContainer", "startContainer"):
        assert by[ph]["mnt"] == by["process"]["mnt"] != host_mnt, \
            f"{ph} runs in the container namespace"
    for ph in PHASES:
        e = by[ph]
        if ph != "createContainer":  # there /proc is still the host's, $$ the container's
            assert e["argv0"] == "sh", "args[0] is argv[0]"
        assert e["var"] == f"v-{ph}", "env is the hook's environment"
        assert e["path"] == "unset", "env replaces the environment"
        st = e["state"]
        assert st["id"] == cid and st["bundle"] == hooked.path
        assert st["ociVersion"].startswith("1.")
    for ph in ("prestart", "createRuntime", "createContainer"):
        assert by[ph]["state"]["status"] == "creating"
        assert by[ph]["state"]["pid"] == init, f"{ph} gets init's host pid"
    assert by["startContainer"]["state"]["status"] == "created"
    assert by["startContainer"]["state"]["pid"] == init
    assert by["poststart"]["state"]["status"] in ("running", "stopped")
    assert by["poststop"]["state"]["status"] == "stopped"


@pytest.mark.parametrize("phase", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_stops_create(ocirt, hooked, phase):
    hooked.config["hooks"][phase] = [{"path": "/bin/sh", "args": ["sh", "-c",
                                                                  "echo broken >&2; exit 3"]}]
    hooked.write()
    cid = ocirt.new_id()
    line = assert_error(ocirt.create(cid, hooked), f"hooks.{phase}[0]")
    assert "broken" in line and "3" in line
    assert not ocirt.state_dirs()
    later = PHASES[PHASES.index(phase) + 1:4]
    if hooked.log.exists():
        assert not any(e["phase"] in later for e in read_log(hooked.log)), "a later hook ran"


def test_failing_start_container_hook_stops_and_destroys(ocirt, hooked):
    hooked.config["hooks"]["startContainer"] = [{"path": "/bin/false"}]
    hooked.write()
    cid = ocirt.new_id()
    ocirt.create(cid, hooked).ok()
    init = ocirt.state(cid)["pid"]
    assert_error(ocirt.start(cid), "hooks.startContainer[0]")
    assert not ocirt.state_dirs(), "the container is destroyed"
    assert not pid_alive(init)
    phases = [e["phase"] for e in read_log(hooked.log)]
    assert "process" not in phases and "poststart" not in phases
    assert phases[-1] == "poststop", "destroying the container runs poststop"


def test_failing_poststart_hook_stops_and_destroys(ocirt, hooked):
    """runtime.md step 9: a failed poststart hook is an error; the container is stopped
    and destroyed, poststop included."""
    hooked.config["hooks"]["poststart"] = [{"path": "/bin/true"}, {"path": "/bin/false"}]
    hooked.args("sleep", "600").write()
    cid = ocirt.new_id()
    ocirt.create(cid, hooked).ok()
    init = ocirt.state(cid)["pid"]
    assert_error(ocirt.start(cid), "hooks.poststart[1]", "error running poststart hook #1")
    assert not ocirt.state_dirs(), "the container is destroyed"
    assert not pid_alive(init)
    assert read_log(hooked.log)[-1]["phase"] == "poststop"


@pytest.mark.parametrize("phase", ["prestart", "createRuntime", "createContainer",
                                   "startContainer", "poststart"])
def test_failing_hook_in_runc_words(ocirt, phase):
    """runc's suite matches "error running <phase> hook #<index>:"."""
    b = ocirt.bundle(["echo", "Hello World"])
    b.config["hooks"] = {phase: [{"path": "/bin/true"}, {"path": "/bin/false"}]}
    b.write()
    r = ocirt.run(ocirt.new_id(), b)
    assert r.returncode != 0 and f"error running {phase} hook #1:" in r.stderr, r
    assert not ocirt.state_dirs()


def test_create_container_hook_runs_in_the_rootfs(ocirt):
    """A createContainer hook's relative paths name the container's files: it runs in
    the rootfs directory (runc's; its hooks-library test bind-mounts ./lib/...)."""
    b = ocirt.bundle(["cat", "/made-by-hook"])
    b.config["root"]["readonly"] = False
    b.config["hooks"] = {"createContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "echo relative > ./made-by-hook"]}]}
    b.write()
    assert ocirt.run(ocirt.new_id(), b).ok().stdout == "relative\n"


def test_start_container_hook_gets_the_process_env(ocirt):
    """A startContainer hook without env runs with the process's environment (runc's
    historical behaviour, which images rely on)."""
    b = ocirt.bundle(["true"])
    b.config["root"]["readonly"] = False
    with open(os.path.join(b.rootfs, "check-env.sh"), "w") as f:
        f.write("#!/bin/sh -ue\ntest $ONE = two\ntest $FOO = bar\necho $HOME\n")
    os.chmod(os.path.join(b.rootfs, "check-env.sh"), 0o755)
    b.process["env"] = ["ONE=two", "FOO=bar"]
    b.config["hooks"] = {"startContainer": [{"path": "/check-env.sh"}]}
    b.write()
    ocirt.run(ocirt.new_id(), b).ok()


def test_failing_poststop_hook_is_a_warning(ocirt, hooked):
    hooked.config["hooks"]["poststop"] = [{"path": "/bin/false"},
                                          hooked.config["hooks"]["poststop"][0]]
    hooked.write()
    cid = ocirt.new_id()
    ocirt.run(cid, hooked).ok()  # run deletes: poststop runs, fails, run still succeeds
    assert not ocirt.state_dirs()
    assert read_log(hooked.log)[-1]["phase"] == "poststop", "the remaining hooks still run"


def _procs_with(arg):
    found = []
    for e in os.listdir("/proc"):
        if e.isdigit() and arg in proc_cmdline(int(e)):
            found.append(int(e))
    return found


@pytest.mark.parametrize("phase", ["createRuntime", "createContainer"])
def test_timeout_kills_the_hook_and_fails(ocirt, hooked, phase):
    marker = "37.%d" % (os.getpid() % 1000)
    hooked.config["hooks"][phase] = [{"path": "/bin/sh", "timeout": 1,
                                      "args": ["sh", "-c", f"sleep {marker} & sleep {marker}"]}]
    hooked.write()
    t0 = time.monotonic()
    assert_error(ocirt.create(ocirt.new_id(), hooked), f"hooks.{phase}[0]", "1s")
    assert time.monotonic() - t0 < 10
    time.sleep(0.2)
    assert not _procs_with(f"sleep {marker}"), "the hook and its children are killed"
    assert not ocirt.state_dirs()


def test_hook_path_missing_is_an_error(ocirt, hooked):
    hooked.config["hooks"]["createRuntime"] = [{"path": "/no/such/hook"}]
    hooked.write()
    assert_error(ocirt.create(ocirt.new_id(), hooked), "hooks.createRuntime[0]", "/no/such/hook")


@pytest.mark.parametrize("hook,field", [
    ({"path": "relative/hook"}, "hooks.prestart[0].path"),
    ({"path": "/bin/true", "timeout": 0}, "hooks.prestart[0].timeout"),
    ({"args": ["x"]}, "hooks.prestart[0].path"),
])
def test_bad_hook_is_a_config_error(ocirt, hook, field):
    b = ocirt.bundle(["true"])
    b.config["hooks"] = {"prestart": [hook]}
    b.write()
    assert_error(ocirt.create(ocirt.new_id(), b), field)
