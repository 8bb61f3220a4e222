"""containerd drives ocirt: ctr -> containerd -> containerd-shim-runc-v2 (runtime
io.containerd.runc.v2) -> ocirt, named per container with --runc-binary.

The containerd is this session's own (conftest.containerd); the image is an OCI
archive of the busybox rootfs, imported with `ctr image import`. Containers live in
namespace <tag>-ctr, cgroups under /<tag>-ctr, the runtime's state under the
session dir (--runc-root).
"""
import json
import os
import re
import time

import pytest

import harness as h

REF = "docker.io/library/ocirt-busybox:latest"


@pytest.fixture(scope="module")
def ctr(containerd, session_dir, rootfs_tar, ocirt_bin, tag):
    ns = f"{tag}-ctr"
    archive = os.path.join(session_dir, "ocirt-busybox-oci.tar")
    h.oci_archive(archive, rootfs_tar, REF)
    containerd.ctr(ns, "image", "import", archive)
    runc_root = os.path.join(session_dir, "ctr-runc-root")

    class C:
        root = runc_root
        namespace = ns
        address = containerd.sock

        @staticmethod
        def argv(*args):
            """The ctr command line, for running it some other way (in a pty)."""
            return [h.CTR, "--address", containerd.sock, "--namespace", ns, *args]

        @staticmethod
        def __call__(*args, **kw):
            return containerd.ctr(ns, *args, **kw)

        @staticmethod
        def run_args(*flags):
            return ["run", "--runc-binary", ocirt_bin, "--runc-root", runc_root, *flags, REF]

    c = C()
    yield c
    for cid in containerd.ctr(ns, "task", "ls", "-q", check=False).stdout.split():
        containerd.ctr(ns, "task", "kill", "-s", "SIGKILL", cid, check=False)
        containerd.ctr(ns, "task", "delete", "-f", cid, check=False)
    for cid in containerd.ctr(ns, "container", "ls", "-q", check=False).stdout.split():
        containerd.ctr(ns, "container", "rm", cid, check=False)
    h.kill_pids(h.cgroup_pids(ns))
    time.sleep(0.2)
    h.remove_cgroups(ns)


_n = [0]


def new_id():
    _n[0] += 1
    return f"c{os.getpid()}-{_n[0]}"


def task_status(ctr, cid):
    for line in ctr("task", "ls").stdout.splitlines()[1:]:
        f = line.split()
        if f and f[0] == cid:
            return f[2]
    return None


def task_pid(ctr, cid):
    for line in ctr("task", "ls").stdout.splitlines()[1:]:
        f = line.split()
        if f and f[0] == cid:
            return int(f[1])
    raise AssertionError(f"no task {cid}")


def wait_status(ctr, cid, want, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st = task_status(ctr, cid)
        if st == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"task {cid}: {task_status(ctr, cid)}, not {want}")


@pytest.fixture
def detached(ctr):
    """Start a detached container (ctr run -d); deleted after the test."""
    made = []

    def start(*cmd, flags=()):
        cid = new_id()
        ctr(*ctr.run_args("-d", *flags), cid, *cmd)
        made.append(cid)
        wait_status(ctr, cid, "RUNNING")
        return cid
    yield start
    for cid in made:
        ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
        ctr("task", "delete", "-f", cid, check=False)
        ctr("container", "rm", cid, check=False)


def test_run_foreground(ctr):
    r = ctr(*ctr.run_args("--rm"), new_id(), "echo", "hello via containerd")
    assert r.stdout.replace("\r", "") == "hello via containerd\n"
    r = ctr(*ctr.run_args("--rm"), new_id(), "sh", "-c", "exit 3", check=False)
    assert r.returncode == 3, r.stderr


def test_run_uses_ocirt(ctr, detached, is_ocirt):
    cid = detached("sleep", "100")
    # The shim passes --root <runc-root>/<namespace>: the state there is the runtime's.
    with open(os.path.join(ctr.root, ctr.namespace, cid, "state.json")) as f:
        st = json.load(f)
    pid = task_pid(ctr, cid)
    if is_ocirt:
        assert st["id"] == cid and st["pid"] == pid


def test_run_tty(ctr):
    rc, out = h.run_in_pty(ctr.argv(*ctr.run_args("--rm", "-t"), new_id(), "sh", "-c",
                                     "tty; read x; echo got:$x; exit 2"), send=b"keys\r")
    assert re.search(r"/dev/pts/\d+", out) and "got:keys" in out, out
    assert rc == 2, out


def test_task_exec(ctr, detached):
    cid = detached("sleep", "100")
    r = ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo in-exec; cat /proc/1/cmdline")
    assert r.stdout.replace("\0", " ").split() == ["in-exec", "sleep", "100"]
    r = ctr("task", "exec", "--exec-id", "e2", cid, "sh", "-c", "exit 6", check=False)
    assert r.returncode == 6
    rc, out = h.run_in_pty(ctr.argv("task", "exec", "-t", "--exec-id", "e3", cid, "sh", "-c",
                                     "tty; exit 4"))
    assert re.search(r"/dev/pts/\d+", out) and rc == 4, out


def test_task_ps(ctr, detached):
    cid = detached("sh", "-c", "sleep 100 & sleep 101 & wait")
    end = time.monotonic() + 30
    while True:
        pids = [int(line.split()[0]) for line in ctr("task", "ps", cid).stdout.splitlines()[1:]]
        if len(pids) == 3 or time.monotonic() > end:
            break
        time.sleep(0.1)
    assert len(pids) == 3, pids
    cmds = sorted(open(f"/proc/{p}/cmdline").read().replace("\0", " ").strip() for p in pids)
    assert cmds == ["sh -c sleep 100 & sleep 101 & wait", "sleep 100", "sleep 101"]


def test_task_pause_resume(ctr, detached):
    cid = detached("sleep", "100")
    ctr("task", "pause", cid)
    assert task_status(ctr, cid) == "PAUSED"
    ctr("task", "resume", cid)
    assert task_status(ctr, cid) == "RUNNING"
    assert ctr("task", "exec", "--exec-id", "x", cid, "echo", "ok").stdout == "ok\n"


def test_task_kill(ctr, detached):
    cid = detached("sh", "-c", "trap 'exit 9' USR1; while :; do sleep 0.1; done")
    h.wait_signal_disposition(task_pid(ctr, cid), 10)
    ctr("task", "kill", "-s", "SIGUSR1", cid)
    wait_status(ctr, cid, "STOPPED")
    r = ctr("task", "delete", cid)
    assert "exit code 9" in r.stderr, r.stderr  # ctr warns about a non-zero exit
    cid = detached("sleep", "100")
    ctr("task", "kill", "-s", "SIGKILL", cid)
    wait_status(ctr, cid, "STOPPED")
    ctr("task", "delete", cid)
    assert not os.path.exists(os.path.join(ctr.root, ctr.namespace, cid))
