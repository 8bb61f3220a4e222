"""Keeping the host out of reach: regression tests for known runtime escapes.
Each protection has a test here that fails when the protection is removed.

- fds (CVE-2024-21626 class): no fd of the caller reaches the container process,
  not even during set-up, and the cwd can't be a /proc/self/fd/N of a host dir.
- non-dumpable (CVE-2019-5736 class): a process entering the container (init,
  exec) can't have /proc/<pid>/exe opened (nor be ptraced) by the container until
  it has exec'd the container's program.
- symlinks in the rootfs (CVE-2021-30465, CVE-2025-31133 classes): mount
  destinations, masked and read-only paths are resolved inside the rootfs, and
  masking never binds a /dev/null that is not the null device.
"""
import errno
import fcntl
import json
import os
import select
import socket
import struct
import subprocess
import tempfile
import threading

import pytest

from helpers import assert_error, pid_alive, wait_for

SLEEP = ["sleep", "600"]


def _fds_of(pid):
    return sorted(int(x) for x in os.listdir(f"/proc/{pid}/fd"))


def _host_dir_fd(tmp_path, num):
    """A directory of the host open as fd `num` in the caller (inheritable)."""
    d = tmp_path / "host-secret"
    d.mkdir(exist_ok=True)
    (d / "secret").write_text("host data\n")
    fd = os.open(str(d), os.O_RDONLY | os.O_DIRECTORY)
    return fd


def _run_with_fd(ocirt, argv, fd, num, timeout=30):
    """ocirt argv... with the host dir fd as fd `num` of the ocirt process (output
    to files: a container may keep them open after ocirt returns)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run(ocirt.argv(*argv), preexec_fn=lambda: os.dup2(fd, num),
                           pass_fds=(fd, num) if num != fd else (fd,), stdout=out,
                           stderr=err, env=ocirt.env(), timeout=timeout,
                           stdin=subprocess.DEVNULL)
        out.seek(0)
        err.seek(0)
        p.stdout, p.stderr = out.read().decode(), err.read().decode()
    return p


# --- fds ---------------------------------------------------------------------------------

def test_container_process_has_only_stdio(ocirt, tmp_path):
    """Seen from the host: the container's process holds fds 0, 1, 2 and nothing
    else, though its caller leaked a host directory as fd 7 to `ocirt create`."""
    fd = _host_dir_fd(tmp_path, 7)
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    try:
        p = _run_with_fd(ocirt, ["create", "--bundle", b.path, cid], fd, 7)
    finally:
        os.close(fd)
    assert p.returncode == 0, p
    init = ocirt.state(cid)["pid"]
    # during set-up and while parked, init never holds the caller's fd
    assert 7 not in _fds_of(init), "the caller's fd reached the container's init"
    ocirt.start(cid).ok()
    assert _fds_of(init) == [0, 1, 2]
    ocirt.delete(cid, "--force").ok()


def test_cwd_through_a_leaked_fd_is_refused(ocirt, tmp_path):
    """process.cwd /proc/self/fd/7 with the caller's fd 7 a host directory."""
    fd = _host_dir_fd(tmp_path, 7)
    b = ocirt.bundle(["sh", "-c", "pwd; cat ../secret"])
    b.process["cwd"] = "/proc/self/fd/7"
    b.write()
    try:
        p = _run_with_fd(ocirt, ["run", "--bundle", b.path, ocirt.new_id()], fd, 7)
    finally:
        os.close(fd)
    assert "host data" not in p.stdout
    assert p.returncode == 1 and "process.cwd" in p.stderr, p


def test_cwd_through_a_preserved_fd_is_refused(ocirt, tmp_path):
    """Even a preserved fd (which stays open in init) can't be the cwd: the cwd is
    checked to be inside the container's root after chdir."""
    fd = _host_dir_fd(tmp_path, 3)
    b = ocirt.bundle(["sh", "-c", "pwd; cat secret"])
    b.process["cwd"] = "/proc/self/fd/3"
    b.write()
    try:
        p = _run_with_fd(ocirt, ["run", "--preserve-fds", "1", "--bundle", b.path,
                                 ocirt.new_id()], fd, 3)
    finally:
        os.close(fd)
    assert "host data" not in p.stdout
    assert p.returncode == 1 and "process.cwd" in p.stderr, p


def test_exec_cwd_through_a_fd_is_refused(ocirt, tmp_path):
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    ocirt.run(cid, b, "-d").ok()
    fd = _host_dir_fd(tmp_path, 3)
    try:
        p = _run_with_fd(ocirt, ["exec", "--preserve-fds", "1", "--cwd", "/proc/self/fd/3",
                                 cid, "cat", "secret"], fd, 3)
        assert "host data" not in p.stdout
        assert p.returncode == 255 and "process.cwd" in p.stderr, p
        p = _run_with_fd(ocirt, ["exec", cid, "ls", "/proc/self/fd"], fd, 3)
        assert p.returncode == 0, p
        assert p.stdout.split() == ["0", "1", "2", "3"]  # 3: ls's directory
        p = _run_with_fd(ocirt, ["exec", cid, "ls", "/proc/self/fd/3/"], fd, 5)
        assert "secret" not in p.stdout
    finally:
        os.close(fd)
    ocirt.delete(cid, "--force").ok()


# --- non-dumpable until execve -----------------------------------------------------------------

def test_parked_init_is_not_dumpable(ocirt):
    """While created, init is ocirt's interpreter: a process of the container (same
    uid and capabilities) can't open or read its /proc/1/exe, fds or environment."""
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    r = ocirt("exec", cid, "sh", "-c",
              "readlink /proc/1/exe; echo link=$?; cat /proc/1/exe >/dev/null; echo open=$?; "
              "readlink /proc/1/fd/0; echo fd=$?")
    r.ok()
    assert "link=1" in r.stdout and "open=1" in r.stdout and "fd=1" in r.stdout, r
    assert "python" not in r.stdout
    ocirt.delete(cid, "--force").ok()


SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1


class HoldingAgent:
    """A seccomp agent that lets every notified syscall continue, except those on
    the `hold`-th listener it receives: those wait until release()."""

    def __init__(self, path, hold):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.hold = hold
        self.held = threading.Event()
        self.go = threading.Event()
        self.held_pid = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        n = 0
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            n += 1
            _msg, fds, _f, _a = socket.recv_fds(c, 65536, 1)
            c.close()
            threading.Thread(target=self._serve, args=(fds[0], n == self.hold),
                             daemon=True).start()

    def _serve(self, fd, hold):
        try:
            while True:
                p = select.poll()
                p.register(fd, select.POLLIN)
                ev = p.poll(30000)
                if not ev or ev[0][1] & (select.POLLHUP | select.POLLERR):
                    return
                buf = bytearray(80)
                fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, buf, True)
                nid, pid = struct.unpack_from("=QI", buf)
                if hold and self.held_pid is None:
                    self.held_pid = pid
                    self.held.set()
                    self.go.wait(30)
                fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(struct.pack(
                    "=QqiI", nid, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE)), True)
        except OSError:
            pass
        finally:
            os.close(fd)

    def close(self):
        self.go.set()
        self.sock.close()


def test_exec_process_is_not_dumpable_until_execve(ocirt, tmp_path):
    """The exec'd process is held in its execve (a seccomp notify rule, the last
    thing before the program runs): then it is still ocirt's interpreter, and
    another process of the container can't open its /proc/<pid>/exe."""
    path = str(tmp_path / "agent.sock")
    agent = HoldingAgent(path, hold=2)  # 1: init's listener, 2: the first exec's
    b = ocirt.bundle(SLEEP)
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
                          "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_NOTIFY"}]}
    b.write()
    cid = ocirt.new_id()
    try:
        ocirt.run(cid, b, "-d").ok()
        held = ocirt.spawn("exec", cid, "true")
        assert agent.held.wait(20), "the exec'd process never reached execve"
        host_pid = agent.held_pid
        ocirt.pids.add(host_pid)
        with open(f"/proc/{host_pid}/cmdline", "rb") as f:
            assert b"ocirt" in f.read(), "the held process is ocirt, before its execve"
        r = ocirt("exec", cid, "sh", "-c",
                  "for p in /proc/[0-9]*; do readlink $p/exe; done; "
                  "for p in /proc/[0-9]*; do head -c1 $p/exe >/dev/null 2>&1 && echo $p; done")
        r.ok()
        assert "python" not in r.stdout, f"the interpreter's exe is reachable: {r.stdout}"
        assert "/bin/busybox" in r.stdout  # the others are readable: the check is real
        agent.go.set()
        assert held.wait(20) == 0
    finally:
        agent.close()
    ocirt.delete(cid, "--force").ok()


# --- symlinks in the rootfs ---------------------------------------------------------------------

def test_mount_destination_symlink_stays_in_rootfs(ocirt, tmp_path):
    """rootfs/evil -> ../../../../host-target (and an absolute /host-target): a
    mount on /evil/sub is made at rootfs/host-target/sub, never on the host."""
    host = tmp_path / "host-target"
    host.mkdir()
    b = ocirt.bundle(["sh", "-c", "grep -E ' /(host-target|abs-target)/sub ' "
                      "/proc/self/mountinfo | cut -d' ' -f5"])
    depth = "../" * (len(b.rootfs.strip("/").split("/")) + 2)
    os.symlink(depth + str(host).lstrip("/"), os.path.join(b.rootfs, "evil"))
    os.symlink(str(host), os.path.join(b.rootfs, "evil-abs"))
    os.makedirs(os.path.join(b.rootfs, str(host).lstrip("/")))
    b.config["root"]["readonly"] = False
    b.config["mounts"] += [
        {"destination": "/evil/sub", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/evil-abs/sub2", "type": "tmpfs", "source": "tmpfs"}]
    b.write()
    r = ocirt.run(ocirt.new_id(), b).ok()
    assert not os.path.exists(host / "sub") and not os.path.exists(host / "sub2"), \
        "a mount destination followed a symlink out of the rootfs"
    inside = os.path.join(b.rootfs, str(host).lstrip("/"))
    assert os.path.isdir(os.path.join(inside, "sub"))
    assert os.path.isdir(os.path.join(inside, "sub2"))
    assert r.stdout.split() == [] or all(l.endswith("/sub") or l.endswith("/sub2")
                                         for l in r.stdout.split())


def test_bind_mount_symlinked_destination_into_host_root(ocirt, tmp_path):
    """A bind mount whose destination is a symlink to / of the host: it lands on the
    container's root, the host's / is untouched."""
    src = tmp_path / "vol"
    src.mkdir()
    (src / "file").write_text("volume\n")
    b = ocirt.bundle(["cat", "/rootlink/volmnt/file"])
    os.symlink("/", os.path.join(b.rootfs, "rootlink"))
    b.config["root"]["readonly"] = False
    b.config["mounts"].append({"destination": "/rootlink/volmnt", "type": "bind",
                               "source": str(src), "options": ["rbind", "ro"]})
    b.write()
    r = ocirt.run(ocirt.new_id(), b).ok()
    assert r.stdout == "volume\n"
    assert not os.path.exists("/volmnt"), "the bind mount went to the host's /"
    assert os.path.isdir(os.path.join(b.rootfs, "volmnt"))


@pytest.mark.parametrize("fs", ["proc", "sys"])
def test_proc_or_sys_that_is_a_symlink_is_refused(ocirt, fs):
    """CVE-2019-19921 / CVE-2023-27561: rootfs/proc -> /evil would put procfs where
    maskedPaths and LSM rules do not look. Refused naming the mount, before any
    process runs, nothing mounted on the target and nothing left behind."""
    b = ocirt.bundle(["true"])
    real = os.path.join(b.rootfs, fs)
    if os.path.isdir(real):
        os.rmdir(real)
    os.mkdir(os.path.join(b.rootfs, "evil"))
    os.symlink("/evil", real)
    if fs == "sys" and not any(m["destination"] == "/sys" for m in b.config["mounts"]):
        b.config["mounts"].append({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                                   "options": ["nosuid", "noexec", "nodev", "ro"]})
    b.write()
    i = [m["destination"] for m in b.config["mounts"]].index("/" + fs)
    line = assert_error(ocirt.run(ocirt.new_id(), b), f"mounts[{i}].destination", f"/{fs}")
    assert "ordinary directory" in line
    assert os.listdir(os.path.join(b.rootfs, "evil")) == []


def test_proc_that_is_a_dangling_symlink_is_refused(ocirt):
    b = ocirt.bundle(["true"])
    os.rmdir(os.path.join(b.rootfs, "proc"))
    os.symlink("/nowhere", os.path.join(b.rootfs, "proc"))
    assert_error(ocirt.run(ocirt.new_id(), b), "mounts[0].destination",
                 "must be mounted on ordinary directory")


def test_proc_below_a_symlinked_dir_is_refused(ocirt):
    """The check covers every component: /proc reached through a symlinked parent."""
    b = ocirt.bundle(["true"])
    os.mkdir(os.path.join(b.rootfs, "real"))
    os.mkdir(os.path.join(b.rootfs, "real", "proc"))
    os.symlink("/real", os.path.join(b.rootfs, "lnk"))
    b.config["mounts"].append({"destination": "/lnk/proc", "type": "proc", "source": "proc"})
    b.write()
    assert_error(ocirt.run(ocirt.new_id(), b), f"mounts[{len(b.config['mounts']) - 1}]",
                 "ordinary directory")


def test_masking_never_binds_a_dev_null_that_is_not_null(ocirt, tmp_path):
    """CVE-2025-31133: /dev/null replaced by a symlink (here to
    /proc/sys/kernel/core_pattern): masking must not bind what it points to."""
    dev = tmp_path / "dev"
    dev.mkdir()
    os.symlink("/proc/sys/kernel/core_pattern", dev / "null")
    b = ocirt.bundle(["cat", "/proc/keys"])
    b.config["mounts"] = [m for m in b.config["mounts"] if not m["destination"].startswith("/dev")]
    b.config["mounts"].append({"destination": "/dev", "type": "bind", "source": str(dev),
                               "options": ["rbind"]})
    b.linux["maskedPaths"] = ["/proc/keys"]
    b.linux["readonlyPaths"] = []
    b.write()
    assert_error(ocirt.run(ocirt.new_id(), b), "linux.maskedPaths[0]", "/dev/null")
    assert os.path.islink(dev / "null")
