"""Podman drives ocirt: podman --runtime <ocirt> -> conmon -> ocirt.

Podman keeps everything under this session's directory (harness.Podman: storage,
run root, tmp dir, file locks, events, network configs, a containers.conf of its own
via CONTAINERS_CONF with default_ulimits = [] since this machine lacks
CAP_SYS_RESOURCE); containers go under cgroup parent /<tag>-podman, conmon too.
The image is the busybox rootfs brought in with `podman import`.
"""
import os
import re
import shutil
import time

import pytest

import harness as h

IMAGE = "localhost/ocirt-busybox:latest"
# Paths Podman's image code writes whatever its configuration says (the blob info
# cache, the short-name alias lock): removed at the end if this session made them.
SYSTEM_PATHS = ("/var/lib/containers", "/var/cache/containers")


@pytest.fixture(scope="module")
def podman(session_dir, rootfs_tar, ocirt_bin, tag):
    h.install_packages(h.PACKAGES["podman"])
    existed = {p for p in SYSTEM_PATHS if os.path.exists(p)}
    cg = f"/{tag}-podman"
    p = h.Podman(os.path.join(session_dir, "p"), ocirt_bin, cg)
    try:
        p("import", "--change", "CMD=/bin/sh", rootfs_tar, IMAGE)
        yield p
    finally:
        p.cleanup()
        for path in SYSTEM_PATHS:
            if path not in existed:
                shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pm(podman):
    """podman, with `run(...)` = podman run --rm --cgroup-parent ... and `detach(...)`;
    the test's containers are removed afterwards."""
    made = []

    class P:
        argv = staticmethod(podman.argv)
        env = podman.env
        cg = podman.cgroup_parent

        @staticmethod
        def __call__(*args, **kw):
            return podman(*args, **kw)

        @staticmethod
        def run(*args, check=False, input=None):
            return podman("run", "--rm", "--cgroup-parent", podman.cgroup_parent, *args,
                          check=check, input=input)

        @staticmethod
        def detach(*args):
            cid = podman("run", "-d", "--cgroup-parent", podman.cgroup_parent,
                         *args).stdout.strip()
            made.append(cid)
            return cid

    yield P()
    if made:
        podman("rm", "-f", "-t", "0", *made, check=False)


def pid_of(pm, cid):
    return int(pm("inspect", "-f", "{{.State.Pid}}", cid).stdout)


def status(pm, cid):
    return pm("inspect", "-f", "{{.State.Status}}", cid).stdout.strip()


def test_run_output_and_exit_code(pm):
    r = pm.run(IMAGE, "echo", "hello from podman")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from podman\n"
    r = pm.run(IMAGE, "sh", "-c", "echo err >&2; exit 3")
    assert r.returncode == 3 and r.stderr.strip() == "err"


def test_run_uses_the_runtime(pm, ocirt_bin):
    cid = pm.detach(IMAGE, "sleep", "100")
    assert pm("inspect", "-f", "{{.OCIRuntime}}", cid).stdout.strip() == ocirt_bin


def test_run_options(pm):
    r = pm.run("--user", "1000:1000", "-e", "A=b", "-w", "/tmp", "--read-only", IMAGE,
               "sh", "-c", "id -u; echo $A; pwd; touch /x 2>&1; true")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:3] == ["1000", "b", "/tmp"]
    assert "Read-only file system" in r.stdout


def test_run_stdin_and_tty(pm):
    r = pm.run("-i", IMAGE, "wc", "-l", input="1\n2\n")
    assert r.stdout.strip() == "2", r.stderr
    r = pm.run("-t", IMAGE, "tty")
    assert re.fullmatch(r"/dev/pts/\d+", r.stdout.strip()), r.stdout + r.stderr
    rc, out = h.run_in_pty(pm.argv("run", "--rm", "-it", "--cgroup-parent", pm.cg, IMAGE,
                                   "sh", "-c", "read x; echo got:$x; exit 5"),
                           send=b"typed\r", env=pm.env)
    assert "got:typed" in out and rc == 5, out


def test_ps_exec(pm):
    cid = pm.detach(IMAGE, "sleep", "100")
    out = pm("ps", "--format", "{{.ID}} {{.Status}}", "--no-trunc").stdout
    assert re.search(rf"^{cid} Up", out, re.M), out
    assert pm("exec", cid, "echo", "in-exec").stdout == "in-exec\n"
    r = pm("exec", cid, "sh", "-c", "exit 6", check=False)
    assert r.returncode == 6
    r = pm("exec", "-u", "1000", "-w", "/tmp", cid, "sh", "-c", "id -u; pwd")
    assert r.stdout.split() == ["1000", "/tmp"]
    r = pm("exec", "-t", cid, "tty")
    assert re.fullmatch(r"/dev/pts/\d+", r.stdout.strip()), r.stdout + r.stderr


def test_stop_and_rm(pm):
    cid = pm.detach(IMAGE, "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")
    h.wait_signal_disposition(pid_of(pm, cid), 15)
    pm("stop", "-t", "60", cid)
    # exit 0 is the trap's: SIGTERM reached it (SIGKILL, after 60s, would give 137)
    assert pm("inspect", "-f", "{{.State.ExitCode}}", cid).stdout.strip() == "0"
    cid2 = pm.detach(IMAGE, "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done")
    h.wait_signal_disposition(pid_of(pm, cid2), 15, "SigIgn")
    t = time.monotonic()
    pm("stop", "-t", "1", cid2)
    assert time.monotonic() - t >= 1
    assert pm("inspect", "-f", "{{.State.ExitCode}}", cid2).stdout.strip() == "137"
    pm("rm", cid, cid2)
    assert cid not in pm("ps", "-aq", "--no-trunc").stdout


def test_kill_pause_rm_force(pm):
    cid = pm.detach(IMAGE, "sh", "-c", "trap 'exit 4' USR1; while :; do sleep 0.1; done")
    h.wait_signal_disposition(pid_of(pm, cid), 10)
    pm("pause", cid)
    assert status(pm, cid) == "paused"
    pm("unpause", cid)
    assert status(pm, cid) == "running"
    pm("kill", "-s", "USR1", cid)
    assert pm("wait", cid).stdout.strip() == "4"
    cid = pm.detach(IMAGE, "sleep", "100")
    pid = int(pm("inspect", "-f", "{{.State.Pid}}", cid).stdout)
    pm("rm", "-f", "-t", "0", cid)
    assert not os.path.exists(f"/proc/{pid}")


def test_error_is_one_line(pm):
    r = pm.run(IMAGE, "/no/such/command")
    assert r.returncode != 0
    err = r.stderr.strip()
    assert "Traceback" not in err and "/no/such/command" in err, err
