"""runtime.md: State, Lifecycle and Operations, through the real CLI.

One test per MUST of the lifecycle and of create/start/state/kill/delete, plus
`run` (exit statuses) and create-start-delete leaving nothing behind.
"""
import json
import os
import signal
import time

import pytest

from helpers import REPO_SPEC, assert_error, oci_state, pid_alive, proc_cmdline, wait_for

SLEEP = ["sleep", "600"]


def _writable(b):
    b.config["root"]["readonly"] = False
    return b


def _validate_state(st):
    jsonschema = pytest.importorskip("jsonschema")
    with open(os.path.join(REPO_SPEC, "state-schema.json")) as f:
        jsonschema.validate(st, json.load(f))


# --- State -------------------------------------------------------------------------

def test_state_created(ocirt):
    b = ocirt.bundle(SLEEP)
    b.config["annotations"] = {"org.example.key": "value", "other": "x"}
    b.write()
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    st = ocirt.state(cid)
    _validate_state(st)
    assert st["ociVersion"].startswith("1.")
    assert st["id"] == cid
    assert st["status"] == "created"
    assert isinstance(st["pid"], int) and st["pid"] > 0
    assert pid_alive(st["pid"])
    assert st["bundle"] == b.path and os.path.isabs(st["bundle"])
    assert st["annotations"] == {"org.example.key": "value", "other": "x"}
    ocirt.delete(cid, "--force").ok()


def test_state_running(ocirt):
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    pid = ocirt.state(cid)["pid"]
    ocirt.start(cid).ok()
    st = ocirt.state(cid)
    _validate_state(st)
    assert st["status"] == "running"
    assert st["pid"] == pid, "pid is the container process, the same before and after start"
    assert proc_cmdline(pid) == "sleep 600"
    assert st["id"] == cid and st["bundle"] == b.path
    ocirt.kill(cid, "KILL").ok()
    ocirt.wait_status(cid, "stopped")
    ocirt.delete(cid).ok()


def test_state_stopped(ocirt):
    b = ocirt.bundle(["true"])
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    st = ocirt.wait_status(cid, "stopped")
    _validate_state(st)
    assert st["id"] == cid and st["bundle"] == b.path
    assert st["ociVersion"].startswith("1.")
    ocirt.delete(cid).ok()


def test_state_annotations_absent_or_empty(ocirt):
    b = ocirt.bundle(SLEEP)
    b.config.pop("annotations", None)
    b.write()
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    st = ocirt.state(cid)
    assert st.get("annotations", {}) == {}
    ocirt.delete(cid, "--force").ok()


def test_state_requires_id(ocirt):
    assert_error(ocirt("state"), "container id")


def test_state_of_unknown_container(ocirt):
    cid = ocirt.new_id()
    line = assert_error(ocirt("state", cid), cid)
    assert "does not exist" in line


# --- Lifecycle ---------------------------------------------------------------------

def test_create_does_not_run_program(ocirt):
    """Lifecycle 2: resources are created but the program MUST NOT run yet."""
    b = _writable(ocirt.bundle())
    b.sh("echo ran > /tmp/ran").write()
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    time.sleep(0.2)
    assert not os.path.exists(os.path.join(b.rootfs, "tmp/ran"))
    assert ocirt.status(cid) == "created"
    ocirt.start(cid).ok()
    wait_for(lambda: os.path.exists(os.path.join(b.rootfs, "tmp/ran")), what="program to run")
    ocirt.wait_status(cid, "stopped")
    ocirt.delete(cid).ok()


def test_create_applies_config_before_start(ocirt):
    """create MUST apply every property but process: the namespaces and the
    hostname exist while the container is only created."""
    b = ocirt.bundle(SLEEP)
    b.config["hostname"] = "made-at-create"
    b.write()
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    pid = ocirt.state(cid)["pid"]
    for name in ("pid", "net", "ipc", "uts", "mnt"):
        assert os.stat(f"/proc/{pid}/ns/{name}").st_ino != os.stat(f"/proc/self/ns/{name}").st_ino
    out = os.popen(f"nsenter -t {pid} -u hostname").read().strip()
    assert out == "made-at-create"
    ocirt.delete(cid, "--force").ok()


def test_config_changes_after_create_have_no_effect(ocirt):
    """Lifecycle 2: updates to config.json after create MUST NOT affect the container."""
    b = _writable(ocirt.bundle())
    b.sh("echo original > /tmp/out").write()
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    b.sh("echo changed > /tmp/out").write()
    b.config["hostname"] = "changed"
    b.write()
    ocirt.start(cid).ok()
    ocirt.wait_status(cid, "stopped")
    with open(os.path.join(b.rootfs, "tmp/out")) as f:
        assert f.read() == "original\n"
    ocirt.delete(cid).ok()


def test_create_start_delete_leaves_nothing(ocirt):
    """Lifecycle 12: delete undoes create (the fixture checks mounts, processes,
    cgroups; here the state dir and the id)."""
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    pid = ocirt.state(cid)["pid"]
    ocirt.start(cid).ok()
    ocirt.kill(cid, "KILL").ok()
    ocirt.wait_status(cid, "stopped")
    ocirt.delete(cid).ok()
    assert not os.path.exists(os.path.join(ocirt.root, cid))
    assert not pid_alive(pid)
    assert "does not exist" in assert_error(ocirt("state", cid), cid)
    assert ocirt.leftovers() == []


def test_id_reusable_after_delete(ocirt):
    b = ocirt.bundle(["true"])
    cid = ocirt.new_id()
    for _ in range(2):
        ocirt.create(cid, b).ok()
        ocirt.start(cid).ok()
        ocirt.wait_status(cid, "stopped")
        ocirt.delete(cid).ok()


# --- Create ------------------------------------------------------------------------

def test_create_requires_id(ocirt, bundle):
    assert_error(ocirt("create", "--bundle", bundle.path), "container id")
    assert ocirt.state_dirs() == []


def test_create_requires_bundle(ocirt, tmp_path):
    """Without --bundle the bundle is the current directory: one without a
    config.json is an error."""
    cid = ocirt.new_id()
    assert_error(ocirt("create", cid, cwd=str(tmp_path)), "config.json")
    assert ocirt.state_dirs() == []


def test_create_id_in_use(ocirt):
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    st = ocirt.state(cid)
    assert_error(ocirt.create(cid, b), cid)
    assert oci_state(ocirt.state(cid)) == oci_state(st), "the existing container must be unaffected"
    assert pid_alive(st["pid"])
    ocirt.delete(cid, "--force").ok()


# --- Start -------------------------------------------------------------------------

def test_start_runs_program(ocirt):
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    pid = ocirt.state(cid)["pid"]
    assert proc_cmdline(pid) != "sleep 600"
    ocirt.start(cid).ok()
    assert proc_cmdline(pid) == "sleep 600"
    ocirt.delete(cid, "--force").ok()


def test_start_requires_id(ocirt):
    assert_error(ocirt("start"), "container id")


def test_start_unknown_container(ocirt):
    cid = ocirt.new_id()
    assert_error(ocirt.start(cid), cid)


def test_start_running_container_fails_without_effect(ocirt):
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    st = ocirt.state(cid)
    assert_error(ocirt.start(cid), cid)
    assert oci_state(ocirt.state(cid)) == oci_state(st)
    ocirt.delete(cid, "--force").ok()


def test_start_stopped_container_fails(ocirt):
    b = ocirt.bundle(["true"])
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    ocirt.wait_status(cid, "stopped")
    assert_error(ocirt.start(cid), cid)
    assert ocirt.status(cid) == "stopped"
    ocirt.delete(cid).ok()


def test_start_needs_process(ocirt, bundle):
    """start MUST fail if process is not set: ocirt refuses it at create."""
    del bundle.config["process"]
    bundle.write()
    assert_error(ocirt.create(ocirt.new_id(), bundle), "process")
    assert ocirt.state_dirs() == []


# --- Kill --------------------------------------------------------------------------

TRAP = ("trap 'echo got-$SIG >> /tmp/sigs' {sig}; echo ready > /tmp/ready; "
        "while true; do sleep 0.05; done")


def _trapping(ocirt, sig):
    b = _writable(ocirt.bundle())
    b.process["env"].append(f"SIG={sig}")
    b.sh(TRAP.format(sig=sig)).write()
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    wait_for(lambda: os.path.exists(os.path.join(b.rootfs, "tmp/ready")), what="trap set")
    return b, cid


def test_kill_sends_signal(ocirt):
    """The signal MUST reach the container process, given as a name, a
    SIG-prefixed name, a number or a lower-case name."""
    b, cid = _trapping(ocirt, "USR1")
    sigs = os.path.join(b.rootfs, "tmp/sigs")
    for n, spec in enumerate(["USR1", "SIGUSR1", str(int(signal.SIGUSR1)), "usr1"], 1):
        ocirt.kill(cid, spec).ok()
        wait_for(lambda: os.path.exists(sigs) and open(sigs).read().count("got-USR1") == n,
                 what=f"the container to get SIGUSR1 sent as {spec!r}")
    assert ocirt.status(cid) == "running"
    ocirt.delete(cid, "--force").ok()


def test_kill_default_is_sigterm(ocirt):
    b, cid = _trapping(ocirt, "TERM")
    ocirt.kill(cid).ok()
    sigs = os.path.join(b.rootfs, "tmp/sigs")
    wait_for(lambda: os.path.exists(sigs) and "got-TERM" in open(sigs).read(),
             what="SIGTERM")
    ocirt.delete(cid, "--force").ok()


def test_kill_created_container(ocirt):
    """kill works on a created container (its process is the init)."""
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    pid = ocirt.state(cid)["pid"]
    ocirt.kill(cid, "KILL").ok()
    ocirt.wait_status(cid, "stopped")
    wait_for(lambda: not pid_alive(pid), what="init to die")
    ocirt.delete(cid).ok()


def test_kill_requires_id(ocirt):
    assert_error(ocirt("kill"), "container id")


def test_kill_stopped_container_fails(ocirt):
    b = ocirt.bundle(["true"])
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    ocirt.wait_status(cid, "stopped")
    line = assert_error(ocirt.kill(cid, "KILL"), cid)
    assert "not running" in line
    assert ocirt.status(cid) == "stopped"
    ocirt.delete(cid).ok()


def test_kill_unknown_signal(ocirt):
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    assert_error(ocirt.kill(cid, "NOTASIGNAL"), "NOTASIGNAL")
    assert_error(ocirt.kill(cid, "99"), "99")
    assert ocirt.status(cid) == "running"
    ocirt.delete(cid, "--force").ok()


# --- Delete ------------------------------------------------------------------------

def test_delete_requires_id(ocirt):
    assert_error(ocirt("delete"), "container id")


def test_delete_unknown_container(ocirt):
    cid = ocirt.new_id()
    assert "does not exist" in assert_error(ocirt.delete(cid), cid)


def test_delete_running_fails_without_effect(ocirt):
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    st = ocirt.state(cid)
    assert_error(ocirt.delete(cid), cid)
    assert oci_state(ocirt.state(cid)) == oci_state(st)
    assert pid_alive(st["pid"])
    ocirt.delete(cid, "--force").ok()
    assert not pid_alive(st["pid"])
    assert ocirt.state_dirs() == []


def test_delete_force_running(ocirt):
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    pid = ocirt.state(cid)["pid"]
    ocirt.delete(cid, "--force").ok()
    assert not pid_alive(pid)
    assert ocirt.state_dirs() == []


def test_delete_stopped(ocirt):
    b = ocirt.bundle(["true"])
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    ocirt.wait_status(cid, "stopped")
    ocirt.delete(cid).ok()
    assert ocirt.state_dirs() == []
    assert_error(ocirt("state", cid), cid)


def test_delete_keeps_resources_not_created_by_container(ocirt):
    """Bind-mount sources and joined namespaces belong to someone else: they
    MUST survive delete."""
    from helpers import Holder
    h = Holder("--uts")
    try:
        b = ocirt.bundle(SLEEP)
        src = os.path.join(b.path, "shared")
        os.mkdir(src)
        with open(os.path.join(src, "keep"), "w") as f:
            f.write("keep")
        b.config["mounts"].append({"destination": "/shared", "type": "none", "source": src,
                                   "options": ["rbind", "rw"]})
        b.config["hostname"] = None
        del b.config["hostname"]
        for n in b.linux["namespaces"]:
            if n["type"] == "uts":
                n["path"] = h.path("uts")
        b.write()
        cid = ocirt.new_id()
        ocirt.create(cid, b).ok()
        ocirt.start(cid).ok()
        ocirt.delete(cid, "--force").ok()
        assert open(os.path.join(src, "keep")).read() == "keep"
        assert pid_alive(h.pid)
    finally:
        h.close()


# --- run ---------------------------------------------------------------------------

@pytest.mark.parametrize("code", [0, 3, 42])
def test_run_returns_exit_status(ocirt, bundle, code):
    r = ocirt.run_sh(bundle, f"exit {code}")
    assert r.returncode == code, r
    assert ocirt.state_dirs() == []


def test_run_returns_128_plus_signal_kill(ocirt):
    """A container process killed by signal N: run exits 128+N."""
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    p = ocirt.spawn("run", "--bundle", b.path, cid)
    try:
        wait_for(lambda: os.path.exists(os.path.join(ocirt.root, cid, "state.json"))
                 and ocirt.status(cid) == "running", what="container to run")
        ocirt.kill(cid, "KILL").ok()
        assert p.wait(timeout=10) == 128 + signal.SIGKILL
    finally:
        p.kill()
        p.wait()
    assert ocirt.state_dirs() == []


def test_run_returns_128_plus_signal_term(ocirt, bundle):
    """Without a pid namespace the shell is an ordinary process: it can kill itself."""
    bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "pid"]
    r = ocirt.run_sh(bundle, "kill -TERM $$; sleep 5")
    assert r.returncode == 128 + signal.SIGTERM, r


def test_run_detach_then_delete(ocirt):
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    ocirt.run(cid, b, "--detach").ok()
    st = ocirt.state(cid)
    assert st["status"] == "running"
    ocirt.delete(cid, "--force").ok()
    assert not pid_alive(st["pid"])


def test_run_keep_keeps_stopped_container(ocirt):
    b = ocirt.bundle(["true"])
    cid = ocirt.new_id()
    ocirt.run(cid, b, "--keep").ok()
    assert ocirt.status(cid) == "stopped"
    ocirt.delete(cid).ok()


def test_a_created_container_dies_of_sigterm(ocirt, bundle):
    """Parked pid 1 of its namespace ignores signals it has no handler for; a created
    container still ends on SIGTERM (as runc's init does), and its process later gets
    the default dispositions."""
    bundle.args("sh", "-c", "grep SigCgt /proc/self/status").write()
    cid = ocirt.new_id()
    ocirt.create(cid, bundle).ok()
    ocirt.kill(cid, "TERM").ok()
    ocirt.wait_status(cid, "stopped", timeout=5)
    ocirt.delete(cid).ok()
    r = ocirt.run(ocirt.new_id(), bundle).ok()
    assert int(r.stdout.split()[1], 16) == 0, r


def test_empty_namespace_path_is_none(ocirt, bundle):
    """"path": "" is Go's zero value: a new namespace, as with no path."""
    for n in bundle.linux["namespaces"]:
        n["path"] = ""
    bundle.write()
    ocirt.run(ocirt.new_id(), bundle).ok()


def test_execve_failure_said_once_in_the_foreground(ocirt, bundle, tmp_path):
    """run in the foreground shares its stdio with init: init's own line is the one
    line (runc's "[execve error]"), the error still goes to --log; detached, start
    says it too (the container's stderr is not the caller's)."""
    bundle.config["root"]["readonly"] = False
    with open(os.path.join(bundle.rootfs, "run.sh"), "w") as f:
        f.write("#!/mmnnttbb foo bar\nsh\n")
    os.chmod(os.path.join(bundle.rootfs, "run.sh"), 0o755)
    bundle.args("/run.sh").write()
    log = tmp_path / "log"
    r = ocirt("run", "--bundle", bundle.path, ocirt.new_id(), global_flags=("--log", str(log)))
    assert r.returncode == 1
    assert r.stderr.splitlines() == ["exec /run.sh: no such file or directory"], r
    assert "level=error" in log.read_text()
    cid = ocirt.new_id()
    ocirt.create(cid, bundle).ok()
    r = ocirt.start(cid)
    assert r.returncode == 1 and r.stderr.splitlines()[-1].startswith("ocirt: container")
    assert ocirt.state_dirs() == []
