"""What the process chains of create (process/launcher.py, init.py) and exec
(process/exec.py) share: the message channel, the environment, args[0] through PATH,
rlimits, the close-on-exec sweep and reaping.

Kept apart from init.py so `exec` loads no rootfs/* module for them.
"""
import os
import _signal
import _socket as socket  # the C module: `socket` imports selectors and enum

from .. import jsonfast, syscalls as sc
from ..errors import ConfigError, OcirtError
from ..lazy import log, stdsocket

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}


def set_rlimits(rlimits, where, hint=""):
    """setrlimit for each entry of process.rlimits; errors name the entry."""
    for i, rl in enumerate(rlimits or []):
        try:
            sc.setrlimit(RLIMITS[rl["type"]], rl["soft"], rl["hard"])
        except (ValueError, OverflowError, OSError) as e:
            why = os.strerror(e.errno) if getattr(e, "errno", None) else str(e)
            raise ConfigError(f"{where}.rlimits[{i}]", f"cannot set {rl['type']} to "
                              f"soft={rl['soft']} hard={rl['hard']}: {why}{hint}") from None
        except KeyError:
            raise ConfigError(f"{where}.rlimits[{i}].type",
                              f"unknown rlimit {rl['type']!r}") from None


def try_chdir(cwd):
    """Enter cwd while still root (True if that worked): a directory only root may
    enter is then still the process's (runc's rule); enter_cwd checks again as the
    user."""
    try:
        os.chdir(cwd)
        os.getcwd()
        return True
    except OSError:
        return False


def enter_cwd(cwd, field, entered_as_root):
    """chdir as the container's user; EACCES is fine when root got there before."""
    try:
        os.chdir(cwd)
        os.getcwd()  # ENOENT when cwd is outside our root (a /proc/self/fd/N of the host)
    except PermissionError:
        if not entered_as_root:
            raise ConfigError(field, f"cannot enter {cwd}: Permission denied") from None
    except OSError as e:
        raise ConfigError(field, f"cannot enter {cwd}: {e.strerror}") from None


def exec_error(arg0, e):
    """What a failed execve says, in runc's (Go's) words: `exec /x: no such file or
    directory`."""
    why = e.strerror or str(e)
    return f"exec {arg0}: {why[:1].lower()}{why[1:]}"


def close_on_exec_but(preserve_fds):
    """Mark every fd above stdio close-on-exec, except the `preserve_fds` after it."""
    sc.close_range(3, 0xFFFFFFFF, sc.CLOSE_RANGE_CLOEXEC)
    for fd in range(3, 3 + preserve_fds):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass


def environ(proc):
    env = {}
    for item in proc.get("env") or []:
        k, sep, v = item.partition("=")
        if sep:
            env[k] = v
    if not env.get("HOME"):  # unset or empty (runc overrides an empty one too)
        env["HOME"] = _home_of((proc.get("user") or {}).get("uid", 0))
    return env


def _home_of(uid):
    """HOME from the container's /etc/passwd, "/" when it has none (as runc does)."""
    try:
        with open("/etc/passwd", "rb") as f:
            for line in f:
                fields = line.decode(errors="replace").rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def resolve_exe(name, env):
    """args[0] through the container's PATH, as runc does, so errors name it."""
    if "/" in name:
        candidates = [name]
    else:
        path = env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
    for c in candidates:
        try:
            st = os.stat(c)
        except OSError:
            continue
        # any exec bit: whether this user may run it is execve's to say (the
        # capabilities that allow it, CAP_DAC_OVERRIDE, are only raised later)
        if (st.st_mode & 0o170000) == 0o100000 and st.st_mode & 0o111:
            return c
    if "/" in name:
        raise ConfigError("process.args[0]", f"exec: {name!r}: no such executable file")
    raise ConfigError("process.args[0]", f"exec: {name!r}: executable file not found in $PATH")


def listen_fds():
    try:
        if int(os.environ.get("LISTEN_PID", "0")) in (0, os.getpid()):
            return int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        pass
    return 0


def caller_fds(first):
    """Inheritable fds >= `first`: ocirt's own are all close-on-exec, so these came
    from the caller and must not reach the container, not even during set-up
    (a /proc/self/fd/N cwd, CVE-2024-21626)."""
    out = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first:
            try:
                if os.get_inheritable(fd):
                    out.append(fd)
            except OSError:
                pass  # the listing's own fd
    return out


def connect_unix(path, flag):
    """A connected SOCK_STREAM unix socket (--console-socket, --pidfd-socket)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise OcirtError(f"{flag} {path}: cannot connect: {e.strerror or e}") from None
    return s


def send_pidfd(conn, pid, name):
    """--pidfd-socket: a pidfd of the container's process over the socket, with SCM_RIGHTS
    (the name is runc's: "standard" for init, "setns" for exec), then close it."""
    fd = os.pidfd_open(pid)
    s = stdsocket.socket(fileno=conn.detach())
    try:
        stdsocket.send_fds(s, [name.encode()], [fd])
    except OSError as e:
        raise OcirtError(f"--pidfd-socket: cannot send the pidfd: {e.strerror}") from None
    finally:
        os.close(fd)
        s.close()


# --- the message channel
#
# The message channel between the `create` process, the intermediate and init.
# 
# A SOCK_SEQPACKET socketpair: each message is one JSON object with a "type".
# Types: go, userns, maps-done, init-pid, hook, hook-done, ready, error, log (a debug
# line for the parent's --log).



class Channel:
    def __init__(self, sock):
        self.sock = sock

    @classmethod
    def pair(cls):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def send(self, type_, **fields):
        fields["type"] = type_
        self.sock.send(jsonfast.dumps(fields).encode())

    def recv(self):
        """The next message, or None when every peer has closed its end."""
        data, anc, _flags, _addr = self.sock.recvmsg(65536, socket.CMSG_SPACE(4 * 4),
                                                        socket.MSG_CMSG_CLOEXEC)
        fds = []
        for level, kind, payload in anc:  # fds passed along (the seccomp notify fd)
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.extend(int.from_bytes(payload[i:i + 4], "little")
                           for i in range(0, len(payload) - len(payload) % 4, 4))
        if not data:
            for fd in fds:
                os.close(fd)
            return None
        msg = jsonfast.loads(data)
        if fds:
            msg["fds"] = fds
        return msg

    def recv_from_child(self):
        """The next message a parent acts on, or None (EOF): what both chains' children
        send alike is dealt with here, a "log" line logged, an "error" raised."""
        while True:
            msg = self.recv()
            if msg is None or msg["type"] not in ("log", "error"):
                return msg
            if msg["type"] == "error":
                raise OcirtError(msg["message"])
            log.LOG.debug(msg["msg"])

    def send_fd(self, type_, fd, **fields):
        """A message with one fd attached (SCM_RIGHTS)."""
        fields["type"] = type_
        self.sock.sendmsg([jsonfast.dumps(fields).encode()],
                          [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fd.to_bytes(4, "little"))])

    def debug(self, on, text):
        """A debug line for the parent's log (`on`: --debug was given)."""
        if on:
            self.send("log", msg=text)

    def expect(self, type_):
        msg = self.recv()
        if msg is None:
            raise EOFError("peer closed the channel")
        if msg["type"] == "error":
            raise ChildError(msg)
        if msg["type"] != type_:
            raise EOFError(f"expected {type_}, got {msg['type']}")
        return msg

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.sock.close()


class ChildError(Exception):
    def __init__(self, msg):
        self.msg = msg
        super().__init__(msg.get("message", "init failed"))


# --- reaping (run and exec in the foreground; we are the subreaper)

def reap(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # not ours (any more): reaped by whoever it was reparented to


def kill_and_reap(*pids):
    """A start that failed: SIGKILL the processes it forked (0/None: not forked) and
    reap those that are our children."""
    pids = [p for p in pids if p]
    for p in pids:
        try:
            os.kill(p, _signal.SIGKILL)
        except ProcessLookupError:
            pass
    for p in pids:
        reap(p)

def reap_status(pid):
    """Reap what has exited; the exit status of `pid` once it has, else None."""
    while True:
        try:
            got, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 255
        if got == 0:
            return None
        if got == pid:
            return 128 + os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)


def wait_status(pid):
    """Reap children until `pid` exits (other orphans may reach us as subreaper)."""
    while True:
        try:
            got, st = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if got == pid:
            if os.WIFSIGNALED(st):
                return 128 + os.WTERMSIG(st)
            return os.WEXITSTATUS(st)
