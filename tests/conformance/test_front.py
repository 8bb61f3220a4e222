"""The C front (ocirt/_shim/front/): state, kill, start and delete served without
Python must be indistinguishable from the Python runtime (OCIRT_FRONT=0), and every
case it does not serve must reach Python with the same argv.

OCIRT_FRONT=trace makes the front say on stderr which path it took, so each test
asserts that the path it means to test is the one taken.
"""
import json
import os
import signal
import subprocess
import time

import pytest

from helpers import OCIRT, Result, assert_error, cgroup_dirs_matching, pid_alive, wait_for

SLEEP = ["sleep", "600"]
TRACE = {"OCIRT_FRONT": "trace"}
PY = {"OCIRT_FRONT": "0"}


@pytest.fixture(autouse=True)
def _front_built():
    with open(OCIRT, "rb") as f:
        if f.read(4) != b"\x7fELF":
            pytest.fail(f"{OCIRT} is not the C front (was it built? see ocirt/_launcher.py)")


def served(r, what):
    assert f"ocirt-front: served {what}" in r.stderr, r
    return r


def deferred(r):
    assert "ocirt-front: python:" in r.stderr, r
    return r


def python_error(r, *needles):
    """The front deferred, and Python failed with its one-line message."""
    deferred(r)
    err = "".join(x for x in r.stderr.splitlines(True) if not x.startswith("ocirt-front: "))
    return assert_error(Result(r.argv, r.returncode, r.stdout, err), *needles)


def _both(ocirt, *args):
    """(front's result, Python's result) of the same read-only command."""
    return ocirt(*args, env=TRACE), ocirt(*args, env=PY)


@pytest.mark.parametrize("status", ["created", "running", "paused"])
def test_state_is_byte_for_byte_pythons(ocirt, status):
    b = ocirt.bundle(SLEEP)
    b.config["annotations"] = {"org.example/k": "v \u00e9 \"q\"", "x": "\n"}
    b.write()
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    if status != "created":
        ocirt.start(cid).ok()
    if status == "paused":
        ocirt("pause", cid).ok()
    front, py = _both(ocirt, "state", cid)
    served(front, f"state {status}")
    assert front.stdout == py.ok().stdout
    assert json.loads(front.stdout)["status"] == status
    if status == "paused":
        ocirt("resume", cid).ok()
    ocirt.delete(cid, "--force").ok()


def _stopped(ocirt):
    """The id of a container whose process (true) has run and exited."""
    cid = ocirt.new_id()
    ocirt.create(cid, ocirt.bundle(["true"])).ok()
    ocirt.start(cid).ok()
    ocirt.wait_status(cid, "stopped")
    return cid


def test_state_of_a_stopped_container_is_pythons_with_its_usage(ocirt):
    cid = _stopped(ocirt)
    r = deferred(ocirt("state", cid, env=TRACE).ok())
    st = json.loads(r.stdout)
    assert st["status"] == "stopped" and st["pid"] == 0
    assert "cpu" in st["x-ocirt-usage"]
    ocirt.delete(cid).ok()


def test_live_state_carries_no_usage(ocirt):
    cid = ocirt.new_id()
    ocirt.create(cid, ocirt.bundle(SLEEP)).ok()
    st = json.loads(served(ocirt("state", cid, env=TRACE).ok(), "state").stdout)
    assert "x-ocirt-usage" not in st
    ocirt.delete(cid, "--force").ok()


def _catches(pid, sig):
    with open(f"/proc/{pid}/status") as f:
        caught = next(line for line in f if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (sig - 1)))


@pytest.mark.parametrize("sig,num", [("KILL", 9), ("SIGKILL", 9), ("9", 9), ("term", 15),
                                     ("SIGUSR1", 10), (None, 15)])
def test_kill_sends_the_signal(ocirt, sig, num):
    # the init of a pid namespace only gets signals it handles: TERM ends it, USR1
    # leaves a mark and it goes on
    b = ocirt.bundle(["sh", "-c", "trap 'exit 0' TERM; trap 'touch /tmp/got-usr1' USR1; "
                      "while :; do sleep 1; done"])
    b.config["root"]["readonly"] = False
    b.write()
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    pid = ocirt.state(cid)["pid"]
    wait_for(lambda: _catches(pid, signal.SIGTERM) and _catches(pid, signal.SIGUSR1),
             what="the shell to set its traps")
    args = ("kill", cid) + ((sig,) if sig else ())
    served(ocirt(*args, env=TRACE).ok(), "kill")
    if num in (9, 15):
        wait_for(lambda: ocirt.status(cid) == "stopped", what="the container to die")
    else:
        mark = os.path.join(b.path, "rootfs", "tmp", "got-usr1")
        wait_for(lambda: os.path.exists(mark), what="the USR1 trap to run")
        assert pid_alive(pid) and ocirt.status(cid) == "running"
    ocirt.delete(cid, "--force").ok()


@pytest.mark.parametrize("args,needle", [
    (("NOSUCHSIG",), "unknown signal"),
    (("65",), "invalid signal"),
    (("--all", "KILL"), None),
    (("0",), None),
])
def test_kill_cases_it_does_not_serve_go_to_python(ocirt, args, needle):
    cid = ocirt.new_id()
    ocirt.create(cid, ocirt.bundle(SLEEP)).ok()
    if args[0] == "--all":
        r = deferred(ocirt("kill", *args[:1], cid, *args[1:], env=TRACE))
        r.ok()
        wait_for(lambda: ocirt.status(cid) == "stopped", what="kill --all")
    elif needle is None:  # signal 0: Python checks init is there
        deferred(ocirt("kill", cid, *args, env=TRACE)).ok()
        assert ocirt.status(cid) == "created"
    else:
        python_error(ocirt("kill", cid, *args, env=TRACE), needle)
        assert ocirt.status(cid) == "created"
    ocirt.delete(cid, "--force").ok()


def test_kill_of_a_stopped_container_fails_in_python(ocirt):
    cid = _stopped(ocirt)
    python_error(ocirt("kill", cid, "KILL", env=TRACE), cid, "not running")
    ocirt.delete(cid).ok()


def test_start_and_delete_are_served_and_leave_nothing(ocirt):
    b = ocirt.bundle(["sh", "-c", "echo started > /tmp/out"])
    b.config["root"]["readonly"] = False
    b.write()
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    assert cgroup_dirs_matching(ocirt.marker), "the test needs a container cgroup"
    served(ocirt("start", cid, env=TRACE).ok(), "start")
    ocirt.wait_status(cid, "stopped")
    with open(os.path.join(b.path, "rootfs", "tmp", "out")) as f:
        assert f.read() == "started\n"
    served(ocirt("delete", cid, env=TRACE).ok(), "delete")
    assert cid not in ocirt.state_dirs()
    assert cgroup_dirs_matching(ocirt.marker) == []
    assert_error(ocirt("state", cid), cid, "does not exist")


def test_start_of_a_started_container_fails_in_python(ocirt):
    cid = ocirt.new_id()
    ocirt.create(cid, ocirt.bundle(SLEEP)).ok()
    ocirt.start(cid).ok()
    python_error(ocirt("start", cid, env=TRACE), cid, "running")
    ocirt.delete(cid, "--force").ok()


def test_start_whose_init_fails_is_destroyed_by_python(ocirt, tmp_path):
    # a failing startContainer hook makes init report an error instead of exec'ing:
    # the front has already released it, so Python must finish the job
    b = ocirt.bundle(SLEEP)
    b.config["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]}
    b.write()
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    r = ocirt("start", cid, env=TRACE)
    assert "ocirt-front: python: init reported an error" in r.stderr, r
    python_error(r, "startContainer")
    assert cid not in ocirt.state_dirs()
    assert cgroup_dirs_matching(ocirt.marker) == []


def test_hooks_send_start_and_delete_to_python(ocirt, tmp_path):
    log = tmp_path / "hooks.log"
    b = ocirt.bundle(["true"])
    b.config["hooks"] = {ph: [{"path": "/bin/sh", "args": ["sh", "-c", f"echo {ph} >> {log}"]}]
                         for ph in ("poststart", "poststop")}
    b.write()
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    deferred(ocirt("start", cid, env=TRACE).ok())
    ocirt.wait_status(cid, "stopped")
    deferred(ocirt("delete", cid, env=TRACE).ok())
    assert log.read_text().split() == ["poststart", "poststop"]


def test_delete_of_a_busy_cgroup_goes_to_python(ocirt):
    # no pid namespace: the init exits, its child stays in the cgroup; the front
    # cannot remove the cgroup, and Python kills what is left and removes it
    b = ocirt.bundle(["sh", "-c", "sleep 600 & exit 0"])
    b.linux["namespaces"] = [n for n in b.linux["namespaces"] if n["type"] != "pid"]
    b.write()
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    ocirt.wait_status(cid, "stopped")
    assert ocirt.live_pids(), "the background sleep should outlive the init"
    r = ocirt("delete", cid, env=TRACE).ok()
    assert "ocirt-front: python: a cgroup is busy" in r.stderr, r
    wait_for(lambda: not ocirt.live_pids(), what="the leftover sleep to be killed")
    assert cgroup_dirs_matching(ocirt.marker) == []


def test_delete_of_a_created_container_goes_to_python(ocirt):
    cid = ocirt.new_id()
    ocirt.create(cid, ocirt.bundle(SLEEP)).ok()
    pid = ocirt.state(cid)["pid"]
    deferred(ocirt("delete", cid, env=TRACE).ok())
    wait_for(lambda: not pid_alive(pid), what="init killed")
    assert cid not in ocirt.state_dirs()


@pytest.mark.parametrize("flags", [("--log-format", "json"), ("--log-format=text",),
                                   ("--systemd-cgroup",)])
def test_engine_global_flags_are_served(ocirt, tmp_path, flags):
    cid = ocirt.new_id()
    ocirt.create(cid, ocirt.bundle(SLEEP)).ok()
    log = str(tmp_path / "log.json")
    r = ocirt("state", cid, global_flags=("--log", log) + flags, env=TRACE).ok()
    served(r, "state created")
    assert not os.path.exists(log) or os.path.getsize(log) == 0, "no log line on success"
    ocirt.delete(cid, "--force").ok()


@pytest.mark.parametrize("argv,needle", [
    (("--debug", "state", "{cid}"), None),
    (("--log-format", "xml", "state", "{cid}"), "log-format"),
    (("--bogus", "state", "{cid}"), "bogus"),
    (("state", "{cid}", "extra"), "one container id"),
    (("state", "no-such-id"), "no-such-id"),
    (("state", "bad/id"), "invalid container id"),
    (("delete", "--bogus", "{cid}"), "bogus"),
])
def test_everything_else_goes_to_python(ocirt, argv, needle):
    cid = ocirt.new_id()
    ocirt.create(cid, ocirt.bundle(SLEEP)).ok()
    args = [a.format(cid=cid) for a in argv]
    r = ocirt(*args, env=TRACE)
    if needle is None:
        deferred(r).ok()
    else:
        python_error(r, needle)
    ocirt.delete(cid, "--force").ok()


def test_the_front_reads_python_state_json_and_nothing_else(ocirt):
    # one record, state.json, read by both (ocirt/rules.py LAYOUT); no second file
    cid = ocirt.new_id()
    ocirt.create(cid, ocirt.bundle(SLEEP)).ok()
    assert sorted(os.listdir(os.path.join(ocirt.root, cid))) == ["exec.sock", "state.json"]
    with open(os.path.join(ocirt.root, cid, "state.json")) as f:
        doc = json.load(f)
    assert "status" not in doc and list(doc)[-1] == "ocirt" and doc["ocirt"]["version"] == 2
    served(ocirt("state", cid, env=TRACE).ok(), "state created")
    ocirt.delete(cid, "--force").ok()


def _rewrite_state(ocirt, cid, fn):
    path = os.path.join(ocirt.root, cid, "state.json")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(fn(text))


def test_a_state_json_the_front_does_not_recognise_is_served_by_python(ocirt):
    # e.g. written by hand or another formatter: Python reads it, the front defers
    # before doing anything
    cid = ocirt.new_id()
    ocirt.create(cid, ocirt.bundle(SLEEP)).ok()
    _rewrite_state(ocirt, cid, lambda t: json.dumps(json.loads(t), indent=4))
    r = deferred(ocirt("state", cid, env=TRACE).ok())
    assert "ocirt-front: python: state.json of another version or layout" in r.stderr, r
    assert json.loads(r.stdout)["status"] == "created"
    r = deferred(ocirt("start", cid, env=TRACE).ok())
    assert "ocirt-front: python: state.json of another version or layout" in r.stderr, r
    assert ocirt.status(cid) == "running"
    ocirt.delete(cid, "--force").ok()


def test_a_state_json_of_another_version_is_refused_by_python(ocirt):
    cid = ocirt.new_id()
    ocirt.create(cid, ocirt.bundle(SLEEP)).ok()
    pid = ocirt.state(cid)["pid"]
    _rewrite_state(ocirt, cid, lambda t: t.replace('"version": 2,', '"version": 1,'))
    for argv in (("state", cid), ("kill", cid, "KILL"), ("start", cid), ("delete", cid)):
        r = ocirt(*argv, env=TRACE)
        assert "ocirt-front: python: state.json of another version or layout" in r.stderr, r
        python_error(r, cid, "version")
    assert pid_alive(pid)
    _rewrite_state(ocirt, cid, lambda t: t.replace('"version": 1,', '"version": 2,'))
    ocirt.delete(cid, "--force").ok()


def test_python_entry_script_reports_the_front_as_the_command(ocirt):
    # `ocirt install` registers sys.argv[0]: it must be the front, not ocirt-py
    with open(OCIRT + "-py") as f:
        assert f"sys.argv[0] = {OCIRT!r}" in f.read()


def test_list_matches_state(ocirt):
    # list reads the same state.json records as `state` and the front: the same
    # objects as `state` gives, in every status
    ids = {}
    for status in ("created", "running", "paused", "stopped"):
        cid = ocirt.new_id()
        ocirt.create(cid, ocirt.bundle(["true"] if status == "stopped" else SLEEP)).ok()
        if status != "created":
            ocirt.start(cid).ok()
        if status == "paused":
            ocirt("pause", cid).ok()
        if status == "stopped":
            ocirt.wait_status(cid, "stopped")
        ids[cid] = status
    listed = {s["id"]: s for s in json.loads(ocirt("list", "--format", "json").ok().stdout)}
    for cid, status in ids.items():
        py = ocirt("state", cid, env=PY).ok()
        st = json.loads(py.stdout)
        front = ocirt("state", cid, env=TRACE).ok()
        if status == "stopped":
            deferred(front)
        else:
            assert served(front, f"state {status}").stdout == py.stdout
        st.pop("x-ocirt-usage", None)
        assert listed[cid].pop("owner") == "root"  # list names the owner, as runc's does
        st.pop("owner", None)
        assert listed[cid] == st and st["status"] == status
    for cid, status in ids.items():
        if status == "paused":
            ocirt("resume", cid).ok()
        ocirt.delete(cid, "--force").ok()


def test_forced_delete_of_a_missing_container_is_served(ocirt):
    # containerd's shim runs `delete --force` after every exit, when the container is
    # usually gone already: runc's rule is success, silently
    r = served(ocirt("delete", "--force", "gone-already", env=TRACE).ok(), "delete --force")
    assert r.stdout == ""
    python_error(ocirt("delete", "gone-already", env=TRACE), "gone-already")
    r = ocirt("delete", "-f", "gone-already", env=PY)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r


def _primer_pid(r):
    for line in r.stderr.splitlines():
        if line.startswith("ocirt-front: primer "):
            return int(line.split("pid=")[1].split()[0])
    return None


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_create_run_and_exec_start_a_primer_that_ends_with_their_cgroup_writes(ocirt):
    """The verbs that move a process into a cgroup fork a primer (front/main.c,
    start_primer) that Python ends once its writes are done: it is gone well
    before its own limit (100 rounds of 3 ms), and neither its variable nor its
    fd reach the container."""
    r = ocirt.run(ocirt.new_id(), ocirt.bundle(["sh", "-c", "env; ls /proc/self/fd"]),
                  env=TRACE).ok()
    pid = _primer_pid(r)
    assert pid, r
    wait_for(lambda: _gone(pid), timeout=0.15, what="the primer's end")
    assert "OCIRT_PRIMER_FD" not in r.stdout
    assert r.stdout.split()[-4:] == ["0", "1", "2", "3"], r.stdout  # 3: ls's own
    cid = ocirt.new_id()
    r = ocirt.create(cid, ocirt.bundle(SLEEP), env=TRACE).ok()
    pid = _primer_pid(r)
    assert pid, r
    wait_for(lambda: _gone(pid), timeout=0.15, what="the primer's end")
    ocirt.start(cid).ok()
    r = ocirt("exec", cid, "sh", "-c", "echo ${OCIRT_PRIMER_FD:-unset}", env=TRACE).ok()
    assert r.stdout.strip() == "unset"
    pid = _primer_pid(r)
    assert pid, r
    wait_for(lambda: _gone(pid), timeout=0.15, what="the primer's end")
    assert _primer_pid(ocirt("state", cid, env=TRACE).ok()) is None
    ocirt.delete(cid, "--force").ok()


def test_the_primer_keeps_none_of_the_callers_fds(ocirt):
    """A caller reading the runtime's stdout or stderr to its end must not wait for
    the primer: it keeps only its pipe and the cgroup.procs it writes. (Without the
    content cache the schema check keeps Python busy for tens of ms, so the primer
    is there to look at.)"""
    cid = ocirt.new_id()
    b = ocirt.bundle(SLEEP)
    p = ocirt.spawn("create", "--bundle", b.path, cid, stderr=subprocess.PIPE,
                    env={**TRACE, "OCIRT_CACHE_DIR": ""})
    try:
        line = p.stderr.readline().decode()
        assert line.startswith("ocirt-front: primer pid="), line
        pid = int(line.split("pid=")[1].split()[0])
        deadline = time.monotonic() + 2
        while True:  # the primer closes what it does not keep just after the fork
            fds = {}
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    fds[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
                except FileNotFoundError:
                    pass
            kinds = sorted("pipe" if t.startswith("pipe:") else
                           "procs" if t.endswith("/cgroup.procs") else t
                           for t in fds.values())
            if kinds == ["pipe", "procs"] or time.monotonic() > deadline:
                break
            time.sleep(0.001)
        assert p.poll() is None, "create ended before the primer could be seen"
        assert kinds == ["pipe", "procs"], fds
        assert p.wait(timeout=30) == 0
    finally:
        p.stderr.close()
        if p.poll() is None:
            p.kill()
            p.wait()
    ocirt._note_pid(cid)
    ocirt.delete(cid, "--force").ok()
