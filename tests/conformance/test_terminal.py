"""process.terminal: the pty comes from the container's own devpts, is the process's
controlling terminal and stdio, is bound on /dev/console, and its master is sent
over --console-socket with SCM_RIGHTS (what containerd's shim and conmon receive).
`ocirt run` without a socket relays the caller's terminal; `exec -t` likewise.
"""
import os
import pty
import select
import socket
import struct
import fcntl
import termios
import threading
import time

import pytest

from helpers import assert_error

TIOCGPTN = 0x80045430


class ConsoleSocket:
    """A --console-socket listener, like conmon's or containerd's: it accepts one
    connection and takes the fd sent with SCM_RIGHTS."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.master = None
        self.name = None
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        try:
            c, _ = self.sock.accept()
        except OSError:  # closed by a test that wanted no console (its fd may be reused)
            return
        msg, fds, _f, _a = socket.recv_fds(c, 4096, 1)
        c.close()
        self.name = msg.decode()
        self.master = fds[0] if fds else None

    def wait(self, timeout=10):
        self.t.join(timeout)
        assert self.master is not None, "no fd arrived on the console socket"
        return self.master

    def close(self):
        self.sock.close()
        if self.master is not None:
            os.close(self.master)
            self.master = None


def read_until(fd, needle, timeout=10):
    buf = b""
    deadline = time.monotonic() + timeout
    while needle.encode() not in buf and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            buf += data
    return buf.decode(errors="replace")


@pytest.fixture
def console(tmp_path):
    cs = ConsoleSocket(str(tmp_path / "console.sock"))
    yield cs
    cs.close()


def tty_bundle(ocirt, script, size=None):
    b = ocirt.bundle(["sh", "-c", script])
    b.process["terminal"] = True
    if size:
        b.process["consoleSize"] = size
    return b.write()


def test_console_socket_receives_master(ocirt, console):
    script = ("tty; stty size; for f in 0 1 2; do readlink /proc/self/fd/$f; done; "
              "ls -l /dev/console; cut -d' ' -f7 /proc/self/stat; read x; echo got:$x; "
              "sleep 0.2")
    b = tty_bundle(ocirt, script, {"height": 33, "width": 101})
    cid = ocirt.new_id()
    ocirt.create(cid, b, "--console-socket", console.path).ok()
    master = console.wait()
    # the master's peer is a pty of the container's devpts, not of the host's
    assert os.fstat(master).st_dev != os.stat("/dev/pts/ptmx").st_dev
    n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    # a console-socket receiver gets the pty as the kernel makes it (ONLCR on)
    assert termios.tcgetattr(master)[1] & termios.ONLCR
    ocirt.start(cid).ok()
    os.write(master, b"hello\n")
    out = read_until(master, "got:hello")
    lines = [l.strip() for l in out.splitlines()]
    assert f"/dev/pts/{n}" in lines
    assert "33 101" in lines
    assert lines.count(f"/dev/pts/{n}") >= 4, out  # tty and fds 0, 1, 2
    console_line = [l for l in lines if l.endswith("/dev/console")]
    assert console_line and console_line[0].startswith("c") and "136," in console_line[0], out
    tty_nr = [l for l in lines if l.isdigit() and int(l) > 0]
    assert tty_nr, f"no controlling terminal (tty_nr 0): {out}"
    assert "got:hello" in out
    ocirt.wait_status(cid, "stopped")
    ocirt.delete(cid).ok()


def test_console_name_and_single_fd(ocirt, console):
    b = tty_bundle(ocirt, "true")
    cid = ocirt.new_id()
    ocirt.create(cid, b, "--console-socket", console.path).ok()
    console.wait()
    assert console.name  # runc sends the master's name as the message data
    ocirt.delete(cid, "--force").ok()


def test_terminal_without_console_socket_is_an_error(ocirt):
    b = tty_bundle(ocirt, "true")
    assert_error(ocirt.create(ocirt.new_id(), b), "process.terminal", "--console-socket")


def test_console_socket_without_terminal_is_an_error(ocirt, console):
    b = ocirt.bundle(["true"])
    assert_error(ocirt.create(ocirt.new_id(), b, "--console-socket", console.path),
                 "--console-socket", "terminal")


def test_unreachable_console_socket_is_an_error(ocirt, tmp_path):
    b = tty_bundle(ocirt, "true")
    assert_error(ocirt.create(ocirt.new_id(), b, "--console-socket",
                              str(tmp_path / "none.sock")), "--console-socket")


def test_run_detached_with_terminal_needs_a_socket(ocirt):
    b = tty_bundle(ocirt, "true")
    assert_error(ocirt.run(ocirt.new_id(), b, "-d"), "process.terminal")


def _run_in_pty(argv, env, send=b"", timeout=20):
    """Run argv with a pty as its stdio (the caller's terminal); return (status, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out = b""
    sent = False
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            out += data
            if b"ready" in out and not sent:
                os.write(fd, send)
                sent = True
        got, st = os.waitpid(pid, os.WNOHANG)
        if got:
            status = os.waitstatus_to_exitcode(st)
            try:
                while True:
                    r, _, _ = select.select([fd], [], [], 0.1)
                    if not r:
                        break
                    data = os.read(fd, 4096)
                    if not data:
                        break
                    out += data
            except OSError:
                pass
            break
    os.close(fd)
    if status is None:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    return status, out.decode(errors="replace")


def test_run_uses_the_callers_terminal(ocirt):
    b = tty_bundle(ocirt, "tty; stty size; echo ready; read x; echo got:$x; exit 7")
    cid = ocirt.new_id()
    fd_size = struct.pack("HHHH", 40, 120, 0, 0)
    argv = ocirt.argv("run", "--bundle", b.path, cid)

    # the caller's terminal is 40x120: the container's pty gets that size
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, fd_size)
        os.execve(argv[0], argv, ocirt.env())
    status, out = None, b""
    sent = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and status is None:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                pass
            if b"ready" in out and not sent:
                os.write(fd, b"abc\r")
                sent = True
        got, st = os.waitpid(pid, os.WNOHANG)
        if got:
            status = os.waitstatus_to_exitcode(st)
    try:
        while select.select([fd], [], [], 0.2)[0]:
            data = os.read(fd, 4096)
            if not data:
                break
            out += data
    except OSError:
        pass
    os.close(fd)
    text = out.decode(errors="replace")
    assert status == 7, text
    assert "/dev/pts/0" in text
    assert "40 120" in text
    assert "got:abc" in text
    assert not ocirt.state_dirs()


def test_run_terminal_with_piped_stdio(ocirt):
    import subprocess
    b = tty_bundle(ocirt, "read x; echo got:$x; tty")
    p = subprocess.run(ocirt.argv("run", "--bundle", b.path, ocirt.new_id()),
                       input=b"piped\n", capture_output=True, timeout=20, env=ocirt.env())
    assert p.returncode == 0, p
    # a relayed terminal has ONLCR cleared (as runc's): "\n" arrives as "\n"
    # (the pty echoes the input line first)
    assert b"\r" not in p.stdout and p.stdout.endswith(b"got:piped\n/dev/pts/0\n"), p


def test_run_terminal_shows_inits_exec_error_first(ocirt):
    """With a relayed terminal, what init printed on it before failing (its execve
    error) still reaches the caller, ahead of ocirt's own line (runc's order)."""
    import subprocess
    b = tty_bundle(ocirt, "true")
    with open(os.path.join(b.rootfs, "run.sh"), "w") as f:
        f.write("#!/no-such-program\n")  # execve says ENOENT: the interpreter is missing
    os.chmod(os.path.join(b.rootfs, "run.sh"), 0o755)
    b.args("/run.sh").write()
    p = subprocess.run(ocirt.argv("run", "--bundle", b.path, ocirt.new_id()),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20,
                       env=ocirt.env())
    assert p.returncode == 1, p
    assert p.stdout.decode().splitlines()[0] == \
        "exec /run.sh: no such file or directory", p
    assert not ocirt.state_dirs()


def test_exec_tty_relayed_without_carriage_returns(ocirt):
    import subprocess
    b = ocirt.bundle(["sleep", "600"])
    cid = ocirt.new_id()
    ocirt.run(cid, b, "-d").ok()
    p = subprocess.run(ocirt.argv("exec", "-t", cid, "sh", "-c", "echo a; echo b"),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20,
                       env=ocirt.env())
    assert p.returncode == 0, p
    assert p.stdout == b"a\nb\n", p
    ocirt.delete(cid, "--force").ok()


def test_exec_tty_with_console_socket(ocirt, console):
    b = ocirt.bundle(["sleep", "600"])
    cid = ocirt.new_id()
    ocirt.run(cid, b, "-d").ok()
    r = ocirt("exec", "-t", "-d", "--console-socket", console.path, cid, "sh", "-c",
              "tty; stty size; sleep 0.3")
    r.ok()
    master = console.wait()
    out = read_until(master, "\n", 5)
    assert out.strip().startswith("/dev/pts/"), out
    ocirt.delete(cid, "--force").ok()


def test_exec_tty_relays_callers_terminal(ocirt):
    b = ocirt.bundle(["sleep", "600"])
    cid = ocirt.new_id()
    ocirt.run(cid, b, "-d").ok()
    status, out = _run_in_pty(ocirt.argv("exec", "-t", cid, "sh", "-c",
                                         "tty; echo ready; read x; echo got:$x; exit 5"),
                              ocirt.env(), send=b"zzz\r")
    assert status == 5, out
    assert "/dev/pts/" in out and "got:zzz" in out
    ocirt.delete(cid, "--force").ok()


def test_exec_tty_detach_without_socket_is_an_error(ocirt):
    b = ocirt.bundle(["sleep", "600"])
    cid = ocirt.new_id()
    ocirt.run(cid, b, "-d").ok()
    assert_error(ocirt("exec", "-t", "-d", cid, "true"), "--console-socket")
    ocirt.delete(cid, "--force").ok()
