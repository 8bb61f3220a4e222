"""The process chain of `ocirt exec`: a new process inside a running container.

ocirt exec (this process; with a foreground process it is the child subreaper)
  └─ joiner: non-dumpable from the start; put into the container's cgroup by the
     parent (after execCPUAffinity.initial), then setns into every namespace of
     the container's init (user first, then the others, mount last), forks the
     process and exits
       └─ process: in the container's pid namespace (setns(pid) applies to
          children only); root of a joined user namespace, then init's finalize
          sequence (finalize.py: oomScoreAdj, personality, scheduler, terminal,
          rlimits, user, cwd, LSM labels, capabilities, no_new_privs and seccomp,
          execve). Errors reach the parent over the channel; a successful execve
          closes it (close-on-exec).

The namespace files are opened by the parent before the fork, once init's pid is
checked against its start time, so a recycled pid can't be joined.
"""
import os
import _signal as signal

from .. import syscalls as sc
from ..config import NAMESPACES
from ..errors import OcirtError
from . import finalize  # the steps from oomScoreAdj to execve, shared with init
from .common import Channel, ChildError, kill_and_reap, reap
from . import speed
from ..log import LOG
from ..lazy import seccomp, state, terminal

# setns order: user first (it decides what the others may do), mount last (it
# changes our root and cwd).
_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


class ExecContext:
    def __init__(self, proc, init_pid, namespaces, where="process"):
        self.proc = proc
        self.where = where
        self.init_pid = init_pid
        self.ns_fds = []          # [(type, fd)] opened by the parent
        self.namespaces = set(namespaces)  # types to join (those the container has)
        self.seccomp = None
        self.console_conn = None
        self.relay_terminal = False
        self.preserve_fds = 0
        self.setgroups_denied = False
        self.close_in_child = []
        self.cgroup = None        # state dict of the container's cgroup
        self.init_start = None
        self.mempolicy = None     # mempolicy.parse() of linux.memoryPolicy
        self.personality = None   # linux.personality, as init has it
        self.debug = LOG.debug_on  # the process's debug lines reach the parent's log

    def open_namespaces(self):
        """Open init's namespace files (types the container has); check init is
        still the same process afterwards."""
        order = _ORDER
        if "user" in self.namespaces and _host_root():
            # with the host's privileges first, then the user namespace: a namespace
            # the container joined need not belong to its user namespace
            order = tuple(t for t in _ORDER if t != "user") + ("user",)
        for t in order:
            if t not in self.namespaces:
                continue
            name = NAMESPACES[t][1]
            try:
                fd = os.open(f"/proc/{self.init_pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise OcirtError(f"cannot open the container's {t} namespace: "
                                 f"{e.strerror}") from None
            self.ns_fds.append((t, fd))
        if not state.process_alive(self.init_pid, self.init_start):
            self.close()
            raise OcirtError("container not running")
        if "user" in self.namespaces:
            denied = sc.read_control(f"/proc/{self.init_pid}/setgroups")
            if denied is not None:
                self.setgroups_denied = denied == "deny"

    def close(self):
        for _t, fd in self.ns_fds:
            os.close(fd)
        self.ns_fds = []


def _host_root():
    """Root of the host's user namespace (not rootless)."""
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return False


def spawn(ctx, on_joiner=None, on_seccomp_fd=None):
    """Start the process; return its host pid once it has exec'd (or raise)."""
    parent, child = Channel.pair()
    speed.before_fork()
    LOG.debug("nsexec container setup: forking the process that joins the container")
    pid = os.fork()
    if pid == 0:
        speed.in_child()
        parent.close()
        code = 1
        try:
            for fd in ctx.close_in_child:
                os.close(fd)
            _joiner(ctx, child)
            code = 0
        except ChildError:
            pass
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            _report(child, e)
        finally:
            os._exit(code)
    child.close()
    ctx.close()
    if ctx.console_conn is not None:
        ctx.console_conn.close()
    proc_pid = None
    try:
        if on_joiner is not None:
            on_joiner(pid)
        speed.placed()
        parent.send("go")
        while True:
            msg = parent.recv_from_child()
            if msg is None:  # every child end closed: the process has exec'd
                if proc_pid is None:
                    raise OcirtError("exec failed: the process exited before it started")
                reap(pid)
                return proc_pid
            kind = msg["type"]
            if kind == "pid":
                proc_pid = msg["pid"]
            elif kind == "seccomp-fd":
                fd = seccomp.recv_notify_fd(msg)
                if on_seccomp_fd is not None:
                    on_seccomp_fd(fd, proc_pid)
                else:
                    os.close(fd)
    except BaseException:
        kill_and_reap(pid, proc_pid)
        raise
    finally:
        parent.close()


def _report(chan, e):
    try:
        if isinstance(e, OcirtError):
            msg = str(e)
        elif isinstance(e, OSError):
            msg = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
        else:
            msg = f"{type(e).__name__}: {e}"
        chan.send("error", message=msg)
    except Exception:  # noqa: BLE001
        pass


def _joiner(ctx, chan):
    sc.prctl(sc.PR_SET_DUMPABLE, 0)
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    chan.expect("go")  # the parent has put us in the cgroup
    for t, fd in ctx.ns_fds:
        try:
            sc.setns(fd, NAMESPACES[t][0])
        except OSError as e:
            raise OcirtError(f"cannot join the container's {t} namespace: {e.strerror}") \
                from None
        os.close(fd)
    pid = os.fork()
    if pid == 0:
        try:
            _process(ctx, chan)
        except BaseException as e:  # noqa: BLE001
            _report(chan, e)
        os._exit(127)
    chan.send("pid", pid=pid)


def _process(ctx, chan):
    chan.debug(ctx.debug, "child process in init(): joined the container")
    if "user" in ctx.namespaces:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    plan = ExecPlan(ctx, chan)
    finalize.prepare(plan)   # oomScoreAdj, personality, scheduler, final affinity
    finalize.finalize(plan)  # terminal, rlimits, user, fds, seccomp, execve


class ExecPlan(finalize.Plan):
    """The finalize steps that are exec's own (the rest are Plan's)."""

    final_affinity = True  # execCPUAffinity applies to exec'd processes only

    def __init__(self, ctx, chan):
        super().__init__(chan, ctx.proc, ctx.where, debug=ctx.debug, seccomp=ctx.seccomp,
                         preserve_fds=ctx.preserve_fds,
                         setgroups_denied=ctx.setgroups_denied, mempolicy=ctx.mempolicy,
                         personality=ctx.personality)
        self.ctx = ctx

    def terminal(self):
        proc, ctx = self.proc, self.ctx
        if not proc.get("terminal"):
            return
        os.setsid()
        # `ocirt exec -t` without --console-socket relays the caller's terminal
        terminal.hand_over(ctx.console_conn, proc, f"{self.where}.consoleSize", ctx.relay_terminal,
                  caller_size=True)

    def before_filter(self, argv0):
        self.chan.debug(self.debug, f"setns_init: about to exec {argv0}")
