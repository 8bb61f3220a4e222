"""ocirt.process.finalize: the one sequence init and exec's process run up to
execve, recorded step by step through the syscall seam (ocirt.syscalls.use(fake))
and fakes of the os calls it makes: nothing here changes the test process's
credentials, limits or policies."""
import os
import _signal
import socket

import pytest

from ocirt import syscalls as sc
from ocirt.errors import ConfigError, OcirtError
from ocirt.process import exec as execmod, finalize, init
from ocirt.process.launcher import InitContext

PRCTL = {sc.PR_SET_KEEPCAPS: "keepcaps", sc.PR_SET_NO_NEW_PRIVS: "no_new_privs",
         sc.PR_CAP_AMBIENT: "ambient", sc.PR_SET_DUMPABLE: "dumpable"}


class Execd(Exception):
    """Raised by the fake execve: the sequence got to its end."""


class FakeSyscalls:
    def __init__(self, log):
        self.log = log

    def __getattr__(self, name):
        def call(*args):
            self.log.append(name)
            return 0
        return call

    def prctl(self, option, a2=0, a3=0, a4=0, a5=0):
        self.log.append(f"prctl {PRCTL.get(option, option)} {a2}")
        return 0

    def capget(self):
        self.log.append("capget")
        return 0, 0, 0


class FakeFilter:
    notify = False

    def __init__(self, log):
        self.log = log

    def load(self, chan=None):
        self.log.append("seccomp load")


class FakeChan:
    def __init__(self, log):
        self.log = log

    def debug(self, on, text):
        if on:
            self.log.append(f"debug {text}")

    def send(self, type_, **fields):
        self.log.append(f"send {type_}")

    def close(self):
        self.log.append("chan close")

    def fileno(self):
        return -1


@pytest.fixture
def log(monkeypatch):
    out = []
    old = sc.use(FakeSyscalls(out))

    def rec(name, ret=None):
        def f(*args, **kw):
            out.append(name)
            return ret
        return f

    def execve(path, args, env):
        out.append(f"execve {path}")
        if path.endswith("missing"):
            raise FileNotFoundError(2, "No such file or directory")
        raise Execd()

    for name in ("setresgid", "setresuid", "umask", "chdir", "sched_setaffinity"):
        monkeypatch.setattr(os, name, rec(name))
    monkeypatch.setattr(os, "getcwd", lambda: "/")
    monkeypatch.setattr(os, "execve", execve)
    monkeypatch.setattr(sc, "write_control", lambda path, value, where: out.append(f"write {path}"))
    monkeypatch.setattr(finalize, "resolve_exe",
                        lambda name, env: out.append("resolve args[0]") or "/bin/" + name)
    saved = {s: _signal.getsignal(s) for s in init._TERMINATING}
    yield out
    sc.use(old)
    for s, h in saved.items():
        _signal.signal(s, h)


def _proc(nnp=False, **extra):
    proc = {"args": ["sh"], "cwd": "/", "env": ["HOME=/root", "PATH=/bin"],
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
            "capabilities": {"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}],
            "oomScoreAdj": 10, "noNewPrivileges": nnp,
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
            "execCPUAffinity": {"final": "0"}}
    proc.update(extra)
    return proc


def _init_plan(log, proc, listener):
    ctx = InitContext({"process": proc, "linux": {"personality": {"domain": "LINUX"}}},
                      "/b", "/b/rootfs", {"park": False, "preserve_fds": 1})
    ctx.seccomp = FakeFilter(log)
    ctx.mempolicy = (0, [])
    ctx.debug = True
    return init.InitPlan(ctx, FakeChan(log), listener)


class FakeListener:
    """exec.sock: `start` connects at once (a real socket, so init may answer on it)."""

    def __init__(self, log):
        self.log = log
        self.a, self.b = socket.socketpair()

    def _accept(self):
        self.log.append("start connected")
        return self.a.detach(), None

    def close(self):
        pass


def _exec_ctx(log, proc):
    ctx = execmod.ExecContext(proc, 1, ["pid", "mount"])
    ctx.seccomp = FakeFilter(log)
    ctx.mempolicy = (0, [])
    ctx.personality = {"domain": "LINUX"}
    ctx.preserve_fds = 1
    ctx.debug = True
    return ctx


def _steps(log):
    """The log in the words of finalize.py's step list."""
    names = {"write /proc/self/oom_score_adj": "P1 oomScoreAdj", "personality": "P2 personality",
             "join_session_keyring": "P3 keyring", "ioprio_set": "P4 ioPriority",
             "sched_setaffinity": "P5 final affinity", "setrlimit": "F2 rlimits",
             "set_mempolicy": "F3 mempolicy", "capbset_drop": "F4 bounding",
             "setgroups": "F4 groups", "setresgid": "F4 gid", "setresuid": "F4 uid",
             "umask": "F4 umask", "resolve args[0]": "F5 args[0]",
             "close_range": "F6 cloexec", "seccomp load": "F8 seccomp",
             "capset": "F8 capset", "prctl no_new_privs 1": "F8 no_new_privs",
             "send ready": "F9 ready", "start connected": "F9 start"}
    out = []
    for i, entry in enumerate(log):
        if entry == "capget":  # raise_effective: capget, capset(permitted as effective)
            out.append("F8 effective raised")
            continue
        if entry == "capset" and log[i - 1] == "capget":
            continue
        step = names.get(entry) or (entry if entry.startswith(("execve", "debug")) else None)
        if step and not (out and out[-1] == step):
            out.append(step)
    return out


IDENTITY = ["F2 rlimits", "F3 mempolicy", "F4 bounding", "F4 groups", "F4 gid", "F4 uid",
            "F4 umask", "F5 args[0]", "F6 cloexec"]


def test_init_order_without_no_new_privs(log):
    listener = FakeListener(log)
    plan = _init_plan(log, _proc(), listener)
    finalize.prepare(plan)
    with pytest.raises(Execd):
        finalize.finalize(plan)
    assert _steps(log) == [
        "P1 oomScoreAdj", "P2 personality", "P3 keyring", "P4 ioPriority",
        *IDENTITY,
        # the filter while CAP_SYS_ADMIN is still there
        "F8 effective raised", "F8 seccomp", "F8 capset",
        "debug init: closing the pipe to signal completion (ready)", "F9 ready",
        "F9 start", "execve /bin/sh"]
    assert "prctl keepcaps 1" in log and "prctl keepcaps 0" in log
    assert log.index("prctl keepcaps 1") < log.index("setresuid") < log.index("prctl keepcaps 0")
    # the terminating signals end a parked init; set before the filter
    assert _signal.getsignal(_signal.SIGTERM) is init._die
    listener.b.close()


def test_init_order_with_no_new_privs(log):
    listener = FakeListener(log)
    plan = _init_plan(log, _proc(nnp=True), listener)
    finalize.prepare(plan)
    with pytest.raises(Execd):
        finalize.finalize(plan)
    steps = _steps(log)
    assert steps[steps.index("F6 cloexec") + 1:] == [
        "F8 capset", "F8 no_new_privs", "F8 seccomp",  # the filter last
        "debug init: closing the pipe to signal completion (ready)", "F9 ready",
        "F9 start", "execve /bin/sh"]
    listener.b.close()


def test_exec_runs_the_same_sequence(log):
    ctx = _exec_ctx(log, _proc())
    with pytest.raises(Execd):
        execmod._process(ctx, FakeChan(log))
    assert _steps(log) == [
        "debug child process in init(): joined the container",
        "P1 oomScoreAdj", "P2 personality", "P4 ioPriority", "P5 final affinity",
        *IDENTITY,
        "debug setns_init: about to exec /bin/sh",  # before the filter may refuse it
        "F8 effective raised", "F8 seccomp", "F8 capset", "execve /bin/sh"]


def test_exec_with_no_new_privs_loads_the_filter_last(log):
    ctx = _exec_ctx(log, _proc(nnp=True))
    with pytest.raises(Execd):
        execmod._process(ctx, FakeChan(log))
    assert _steps(log)[-4:] == ["F8 capset", "F8 no_new_privs", "F8 seccomp", "execve /bin/sh"]


def test_errors_name_the_field_of_each(log, monkeypatch):
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(os, "setresuid", refuse)
    with pytest.raises(ConfigError, match=r"^process.user.uid: cannot become uid 1000"):
        finalize.finalize(_init_plan(log, _proc(), FakeListener(log)))
    ctx = _exec_ctx(log, _proc())
    ctx.where = "exec.process"
    with pytest.raises(ConfigError, match=r"^exec.process.user.uid: cannot become uid 1000"):
        execmod._process(ctx, FakeChan(log))


def test_a_failed_execve(log, monkeypatch):
    """exec raises it (its parent prints it); init prints it on the container's
    stderr and answers `start`."""
    ctx = _exec_ctx(log, _proc(args=["missing"]))
    with pytest.raises(OcirtError, match="^exec missing: no such file or directory$"):
        execmod._process(ctx, FakeChan(log))

    listener = FakeListener(log)
    printed = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, b: printed.append((fd, b)) if fd == 2
                        else real_write(fd, b))

    def exit_(code):
        raise SystemExit(code)
    monkeypatch.setattr(os, "_exit", exit_)
    with pytest.raises(SystemExit) as e:
        finalize.finalize(_init_plan(log, _proc(args=["missing"]), listener))
    assert e.value.code == 127
    assert printed == [(2, b"exec missing: no such file or directory\n")]
    assert listener.b.recv(100) == init.PRINTED + b"exec missing: no such file or directory"
    listener.b.close()
