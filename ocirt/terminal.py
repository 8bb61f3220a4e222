"""process.terminal: a pty from the container's own devpts, its master sent over the
console socket with SCM_RIGHTS (what containerd's shim and conmon receive), its
slave the process's controlling terminal and stdio, bind-mounted on /dev/console.

Parent side (create, exec, run): `connect_console(path)` before the fork; `run`
and `exec` without --console-socket receive the master themselves over a
socketpair and relay the caller's terminal (`relay`).
Container side (init, exec's child): `setup_console(ctx)` / `open_pty()`.
"""
import fcntl
import os
import select
import socket
import stat
import struct
import termios
import tty
import _signal as signal

from . import syscalls as sc
from .errors import ConfigError, OcirtError
from .process.common import connect_unix

TIOCSCTTY = 0x540E
TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414
TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430
TIOCGPTPEER = 0x5441
PTMX_RDEV = os.makedev(5, 2)
MASTER_NAME = "/dev/pts/ptmx"  # the name sent with the fd (receivers ignore it)


# --- parent side -------------------------------------------------------------------

def connect_console(path):
    """A connected socket to --console-socket, made before the fork."""
    return connect_unix(path, "--console-socket")


def recv_master(sock, block=True):
    """The pty master sent by the container side, or None (nothing was sent)."""
    flags = socket.MSG_CMSG_CLOEXEC | (0 if block else socket.MSG_DONTWAIT)
    try:
        _data, anc, _f, _a = sock.recvmsg(4096, socket.CMSG_SPACE(4), flags)
    except BlockingIOError:
        return None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS and len(payload) >= 4:
            return int.from_bytes(payload[:4], "little")
    return None


# --- container side ----------------------------------------------------------------

def open_pty():
    """(master, slave) from the devpts mounted at /dev/pts, checked to be one: a
    ptmx swapped for something else by the rootfs is refused."""
    try:
        h = os.open("/dev/pts/ptmx", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise ConfigError("process.terminal", f"cannot open /dev/pts/ptmx: {e.strerror}"
                          " (a terminal needs a devpts mount at /dev/pts)") from None
    try:
        st = os.fstat(h)
        if not stat.S_ISCHR(st.st_mode) or st.st_rdev != PTMX_RDEV:
            raise ConfigError("process.terminal", "/dev/pts/ptmx is not a devpts ptmx")
        master = os.open(f"/proc/self/fd/{h}" if os.path.isdir("/proc/self/fd")
                         else "/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    finally:
        os.close(h)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        try:
            slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:  # kernels before 4.13: by number, in the same devpts
            n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
            slave = os.open(f"/dev/pts/{n}", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC
                            | os.O_NOFOLLOW)
    except BaseException:
        os.close(master)
        raise
    return master, slave


def clear_onlcr(fd):
    """A terminal relayed to the caller (run, exec -t without --console-socket) does
    not turn "\\n" into "\\r\\n": the caller's own terminal does that (as runc's
    relay clears it; a console-socket receiver decides for itself)."""
    attrs = termios.tcgetattr(fd)
    attrs[1] &= ~termios.ONLCR
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def set_size(fd, size, where="process.consoleSize"):
    if not size:
        return
    h, w = size.get("height", 0), size.get("width", 0)
    try:
        fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", h, w, 0, 0))
    except (OSError, struct.error) as e:
        raise ConfigError(where, f"cannot set the terminal size: {e}") from None


def copy_size(src, master):
    """The size of the terminal on `src` (the caller's) onto the pty, unless the pty
    already has one (process.consoleSize)."""
    if os.isatty(src):
        try:
            if fcntl.ioctl(master, TIOCGWINSZ, b"\0" * 8)[:4] == b"\0" * 4:
                fcntl.ioctl(master, TIOCSWINSZ, fcntl.ioctl(src, TIOCGWINSZ, b"\0" * 8))
        except OSError:
            pass


def send_master(conn, master):
    try:
        socket.send_fds(conn, [MASTER_NAME.encode()], [master])
    except OSError as e:
        raise OcirtError(f"--console-socket: cannot send the terminal: {e.strerror}") from None


def take_terminal(slave, uid):
    """Make `slave` our controlling terminal and stdio, owned by the process's user."""
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    fcntl.ioctl(0, TIOCSCTTY, 0)
    if uid:
        try:
            os.fchown(slave, uid, -1)
        except OSError:
            pass  # an unmapped uid: the process can still use its own tty's fds
    os.close(slave)


def mount_console(slave):
    """Bind the slave on /dev/console, through fds: neither end is a path a symlink
    could redirect."""
    try:
        dev = sc.openat2(-100, "/dev", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0,
                         sc.RESOLVE_NO_SYMLINKS | sc.RESOLVE_NO_MAGICLINKS)
    except OSError as e:
        raise ConfigError("process.terminal", f"cannot open /dev: {e.strerror}") from None
    try:
        try:
            os.close(os.open("console", os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                             | os.O_RDONLY, 0o600, dir_fd=dev))
        except OSError as e:
            if e.errno != 40 and e.errno != 6:  # ELOOP (symlink), ENXIO (a device)
                raise
        target = os.open("console", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dev)
        try:
            st = os.fstat(target)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode)):
                raise ConfigError("process.terminal", "/dev/console in the rootfs is not "
                                  "a file or a character device")
            sc.mount(f"/proc/self/fd/{slave}", f"/proc/self/fd/{target}", None, sc.MS_BIND,
                     None)
        finally:
            os.close(target)
    except OSError as e:
        raise ConfigError("process.terminal", f"cannot bind the terminal on /dev/console: "
                          f"{e.strerror}") from None
    finally:
        os.close(dev)


def setup_console(ctx):
    """init: after pivot_root, before the rootfs is made read-only."""
    own_mnt = "mount" in ctx.new_ns or any(t == "mount" for t, _ in ctx.namespaces)
    hand_over(ctx.console_conn, ctx.cfg.get("process") or {}, "process.consoleSize",
              relayed=ctx.console_socket is None, console=own_mnt)


def hand_over(conn, proc, where, relayed, caller_size=False, console=False):
    """A new pty for `proc` (init's, or exec's process): its size set, its master sent
    over `conn` (closed then), its slave made our controlling terminal and stdio.
    `relayed`: the caller's terminal relays it (no ONLCR; with `caller_size`, the size
    of the caller's terminal on fd 0, unless consoleSize gave one); `console`: the
    slave bound on /dev/console too (init in a mount namespace of its own)."""
    master, slave = open_pty()
    try:
        set_size(master, proc.get("consoleSize"), where)
        if relayed:
            if caller_size:
                copy_size(0, master)
            clear_onlcr(master)
        if console:
            mount_console(slave)
        send_master(conn, master)
    finally:
        os.close(master)
        conn.close()
    take_terminal(slave, (proc.get("user") or {}).get("uid", 0))


# --- relaying the caller's terminal (run / exec without --console-socket) -----------

def relay(master, wait_child, size=None):
    """Copy stdin -> master and master -> stdout until `wait_child()` (non-blocking
    reap) returns an exit status; the caller's terminal is raw meanwhile and its size
    follows SIGWINCH. Returns the status."""
    stdin_tty = os.isatty(0)
    saved = None
    if stdin_tty:
        saved = termios.tcgetattr(0)
        tty.setraw(0)

    def resize(*_a):
        if stdin_tty and os.isatty(0):
            try:
                ws = fcntl.ioctl(0, TIOCGWINSZ, b"\0" * 8)
                fcntl.ioctl(master, TIOCSWINSZ, ws)
            except OSError:
                pass
    if size:
        set_size(master, size)
    else:
        resize()
    rfd, wfd = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    old_wakeup = signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
    old_chld = signal.signal(signal.SIGCHLD, lambda *_a: None)
    old_winch = signal.signal(signal.SIGWINCH, resize)
    p = select.poll()
    p.register(master, select.POLLIN)
    p.register(rfd, select.POLLIN)
    stdin_open = True
    try:
        p.register(0, select.POLLIN)
    except (OSError, ValueError):
        stdin_open = False
    status = None
    try:
        while status is None:
            for fd, ev in p.poll(1000):
                if fd == rfd:
                    try:
                        os.read(rfd, 512)
                    except BlockingIOError:
                        pass
                elif fd == master:
                    if not _copy(master, 1):
                        p.unregister(master)
                elif fd == 0:
                    data = b""
                    if ev & (select.POLLIN | select.POLLHUP):
                        try:
                            data = os.read(0, 65536)
                        except OSError:
                            data = b""
                    if data:
                        _write_all(master, data)
                    else:
                        p.unregister(0)
                        stdin_open = False
                        if not stdin_tty:
                            _write_all(master, b"\x04")  # EOF for the canonical reader
            status = wait_child()
        # the process is gone: what it wrote is still in the pty
        os.set_blocking(master, False)
        while _copy(master, 1):
            pass
    finally:
        signal.signal(signal.SIGWINCH, old_winch)
        signal.signal(signal.SIGCHLD, old_chld)
        signal.set_wakeup_fd(old_wakeup)
        os.close(rfd)
        os.close(wfd)
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
    del stdin_open
    return status


def _copy(src, dst):
    try:
        data = os.read(src, 65536)
    except (BlockingIOError, OSError):
        return False  # EIO: every slave fd is closed
    if not data:
        return False
    _write_all(dst, data)
    return True


def _write_all(fd, data):
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            select.select([], [fd], [], 1)
            continue
        except OSError:
            return
        data = data[n:]
