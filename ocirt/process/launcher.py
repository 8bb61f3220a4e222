"""The create process's side of the process chain.

create (this process)
  └─ intermediate: joins namespaces by path, unshares new ones (user first, the
     parent writing its id maps), forks init, reports init's pid, exits
       └─ init: pid 1 of the new pid namespace (process/init.py)

The intermediate is placed in the container's cgroup before it unshares or forks,
so init and everything it starts are accounted from the first byte.

Without a user namespace, a pid namespace joined by path or a time namespace,
there is nothing the intermediate must do before the pid namespace exists, so
create forks init itself: it unshares the pid namespace for its children only
(init is born pid 1 in it) and resets that at once; init waits to be placed in
the cgroup, then joins and unshares the other namespaces (the cgroup one after
the placement, so the container's cgroup is its root). One fork less on every
create without a user namespace.
"""
import errno
import os
import _signal as signal

from .. import syscalls as sc
from ..config import NAMESPACES
from ..errors import OcirtError
from .common import Channel, ChildError, kill_and_reap, reap
from . import speed
from ..log import LOG
from ..lazy import attrs, idmap, init, mounts, rootless, rootless_cgroup, seccomp, terminal, userns


class InitContext:
    """Everything init needs, resolved before the fork."""

    def __init__(self, cfg, bundle, rootfs, opts):
        self.cfg = cfg
        self.bundle = bundle
        self.rootfs = rootfs
        self.namespaces = [(n["type"], n.get("path") or None)
                           for n in (cfg.get("linux") or {}).get("namespaces") or []]
        self.new_ns = {t for t, p in self.namespaces if p is None}
        self.own_mount_ns = any(t == "mount" for t, _ in self.namespaces)
        self.no_pivot = opts.get("no_pivot", False)
        self.no_new_keyring = opts.get("no_new_keyring", False)
        self.park = opts.get("park", True)  # give back code pages while waiting in created
        self.preserve_fds = opts.get("preserve_fds", 0)
        self.console_socket = opts.get("console_socket")
        self.stdio = opts.get("stdio")  # fds for init's 0, 1, 2 (None: the caller's)
        self.console_conn = None  # connected console socket (init sends the pty master)
        self.seccomp = None
        self.setgroups_denied = False
        self.rootless = False  # set by create (ocirt/rootless.py)
        self.hooks = None
        self.cgroup = None
        self.state_for_hooks = None  # status -> OCI state dict for hooks and seccomp agents
        self.init_pid = None  # init's host pid, once the intermediate has reported it
        self.close_in_child = []  # fds of the create process init must not keep (locks)
        self.idmap_fds = {}  # mount index -> detached idmapped tree (rootfs/idmap.py)
        self.detached_locked = {}  # mount index -> its source's lockable flags
        self.idmap_late = {}  # mount index -> user namespace fd: init idmaps it itself
        self.readonly_later = []  # (destination, flags) remounted read-only at the end
        self.mempolicy = None  # mempolicy.parse() of linux.memoryPolicy
        self.on_netns = None  # f(init_pid), once init's namespaces exist (netDevices)
        # init: wait until create has made the cgroup and moved init in (the "go");
        # set by _init_directly when init goes on before it (`early`)
        self.placed = _nothing
        self.early = False
        self.debug = LOG.debug_on  # init's debug lines go to the parent over the channel

    def run_hooks(self, phase, default_env=None):
        if self.hooks is not None:
            status = "created" if phase == "startContainer" else "creating"
            # createContainer hooks run before pivot_root in the rootfs, as runc's do
            # (relative paths in them name the container's files)
            cwd = self.rootfs if phase == "createContainer" else None
            self.hooks.run(phase, self.state_for_hooks(status), default_env, cwd)

    def mount_cgroup(self, target, opts, where):
        if self.rootless:
            return rootless_cgroup.mount_cgroup(self, target, opts, where)
        self.cgroup.mount_in_container(target, opts, where)

    def setup_terminal(self):
        terminal.setup_console(self)


def spawn(ctx, exec_listener, on_intermediate=None):
    """Start the chain; return init's host pid once init is ready and parked.

    `on_intermediate(pid)` runs before the intermediate (or init, when create forks
    it directly) may proceed: the cgroup placement.
    """
    parent, child = Channel.pair()
    speed.before_fork(stays=True)
    direct = _direct(ctx)
    LOG.debug(f"nsexec container setup: forking {'init' if direct else 'the intermediate'}")
    pid = _fork_init(ctx) if direct else os.fork()
    if pid == 0:
        speed.in_child()
        parent.close()
        if ctx.stdio is not None:
            for i, fd in enumerate(ctx.stdio):
                if fd != i:
                    os.dup2(fd, i)
        for fd in ctx.close_in_child:
            os.close(fd)
        code = 1
        try:
            (_init_directly if direct else _intermediate)(ctx, child, exec_listener)
            code = 0
        except ChildError:
            pass
        except BaseException as e:  # noqa: BLE001 - reported to the parent, never printed here
            _report(child, e)
        finally:
            os._exit(code)
    child.close()
    init_pid = None
    if direct:
        init_pid = ctx.init_pid = pid
        pid = None
    try:
        try:
            if on_intermediate is not None:
                on_intermediate(pid or init_pid)
            attrs.reset_affinity(pid or init_pid)  # after the cgroup placement (cpuset)
            speed.placed()
            parent.send("go")
        except (OSError, OcirtError) as e:
            # init goes on before the go (ctx.early): when it has failed already, a
            # move that finds it gone, or a go it can no longer read, would hide why
            if isinstance(e, OSError) or e.errno == errno.ESRCH:
                _raise_child_error(parent)
            raise
        deferred = []
        while True:
            if deferred and init_pid is not None:
                msg = deferred.pop(0)
            else:
                try:
                    msg = parent.recv_from_child()
                except ConnectionResetError:  # killed with data unread (OOM, SIGKILL)
                    msg = None
            if msg is None:
                raise OcirtError("container init exited before it was ready" + (
                    " (linux.seccomp: the filter may refuse a syscall init makes after"
                    " loading it, e.g. sendto, accept4, close, execve, exit_group)"
                    if ctx.seccomp is not None else ""))
            kind = msg["type"]
            if init_pid is None and kind in ("hooks", "seccomp-fd", "ready", "idmap"):
                # init and the intermediate share the channel: init may speak before
                # the intermediate has reported init's pid, which comes next.
                deferred.append(msg)
                continue
            if ctx.on_netns is not None and kind in ("hooks", "idmap", "seccomp-fd", "ready"):
                on_netns, ctx.on_netns = ctx.on_netns, None  # init has unshared: before
                on_netns(init_pid)  # any hook, and before the container process runs
            if kind == "userns":
                _write_id_maps(ctx, pid)
                parent.send("maps-done", setgroups_denied=ctx.setgroups_denied)
            elif kind == "init-pid":
                init_pid = ctx.init_pid = msg["pid"]
                reap(pid)
                pid = None
            elif kind == "hooks":
                if ctx.hooks is not None:
                    ctx.hooks.run("prestart", ctx.state_for_hooks())
                    ctx.hooks.run(msg["phase"], ctx.state_for_hooks())
                parent.send("hooks-done", pid=init_pid)
            elif kind == "seccomp-fd":
                ctx.seccomp.send_to_listener(seccomp.recv_notify_fd(msg), ctx.state_for_hooks(),
                                             init_pid)
            elif kind == "ready":
                return init_pid
            elif kind == "idmap":
                _idmap_for_init(ctx, parent, init_pid, msg["index"])
    except BaseException:
        kill_and_reap(pid, init_pid)
        raise
    finally:
        parent.close()
        if ctx.console_conn is not None:
            ctx.console_conn.close()  # init has its copy


def _raise_child_error(chan):
    """Raise the error the child has sent already, if it has."""
    chan.sock.setblocking(False)
    try:
        chan.recv_from_child()  # raises the child's error; else there is nothing to add
    except BlockingIOError:
        pass
    finally:
        chan.sock.setblocking(True)


def _idmap_for_init(ctx, chan, init_pid, index):
    """An idmapped tree of a source inside the rootfs, for an init in a new user
    namespace (it may not idmap: only the host's root may): a child of ours enters
    init's mount namespace, where the mounts before it exist, clones and idmaps the
    source there and sends the tree to init."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fd = os.open(f"/proc/{init_pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
            sc.setns(fd, NAMESPACES["mount"][0])
            m = (ctx.cfg.get("mounts") or [])[index]
            where = f"mounts[{index}]"
            tree = idmap.idmap_now(m, ctx.bundle, mounts.parse_options(m.get("options"), where),
                                   ctx.idmap_late[index], where)
            chan.send_fd("idmap-fd", tree)
            code = 0
        except BaseException as e:  # noqa: BLE001 - init reports it
            try:
                chan.send("idmap-fd", message=str(e) if isinstance(e, OcirtError)
                          else f"{type(e).__name__}: {e}")
            except Exception:  # noqa: BLE001
                pass
        finally:
            os._exit(code)
    reap(pid)


def _report(chan, e):
    try:
        msg = str(e) if isinstance(e, OcirtError) else f"{type(e).__name__}: {e}"
        if isinstance(e, OSError) and not isinstance(e, OcirtError):
            msg = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
        chan.send("error", message=msg)
    except Exception:  # noqa: BLE001 - the parent sees EOF instead
        pass


def _intermediate(ctx, chan, exec_listener):
    # non-dumpable before any namespace is joined: init inherits it from the fork,
    # so a process of a joined pid namespace never sees a dumpable ocirt
    sc.prctl(sc.PR_SET_DUMPABLE, 0)
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    chan.expect("go")
    _join(ctx)
    if any(t == "user" for t, p in ctx.namespaces if p is not None):
        _become_root_of_joined_userns(ctx)
    if "user" in ctx.new_ns:
        try:
            sc.unshare(sc.CLONE_NEWUSER)
        except OSError as e:
            raise OcirtError(rootless.unshare_error(e)) from None
        sc.prctl(sc.PR_SET_DUMPABLE, 1)  # so an unprivileged parent may write our maps
        chan.send("userns")
        # init (forked below) must know: it may then not call setgroups
        ctx.setgroups_denied = bool(chan.expect("maps-done").get("setgroups_denied"))
        sc.prctl(sc.PR_SET_DUMPABLE, 0)
        os.setresgid(0, 0, 0) if _mapped(0, "/proc/self/gid_map") else None
        os.setresuid(0, 0, 0) if _mapped(0) else None
    _unshare(ctx.new_ns - {"user"})
    offsets = (ctx.cfg.get("linux") or {}).get("timeOffsets")
    if offsets and "time" in ctx.new_ns:
        # in a new user namespace our /proc files belong to the host's root unless we
        # are dumpable (as for the id maps): only then may we open timens_offsets
        sc.prctl(sc.PR_SET_DUMPABLE, 1)
        try:
            _write_time_offsets(offsets)
        finally:
            sc.prctl(sc.PR_SET_DUMPABLE, 0)
    pid = os.fork()
    if pid == 0:
        try:
            init.run_init(ctx, chan, exec_listener)
        except BaseException as e:  # noqa: BLE001
            _report(chan, e)
        os._exit(1)
    chan.send("init-pid", pid=pid)


def _become_root_of_joined_userns(ctx):
    """After setns into another container's user namespace our host uid is unmapped
    there (files we made would fail with EOVERFLOW): become its root, and take over
    whether it allows setgroups."""
    if _mapped(0, "/proc/self/gid_map"):
        os.setresgid(0, 0, 0)
    if _mapped(0):
        os.setresuid(0, 0, 0)
    denied = sc.read_control("/proc/self/setgroups")
    if denied is not None:
        ctx.setgroups_denied = denied == "deny"


def _init_directly(ctx, chan, exec_listener):
    """Init forked by create itself (already pid 1 of a new pid namespace if one is
    asked for): the intermediate's work but the user namespace, then init's.

    While create makes the cgroup and moves init in (the "go"), init may already
    unshare its namespaces and make the mounts that neither allocate by the image's
    or the user's measure nor need the cgroup (run_init calls ctx.placed() before
    the rest) -- when nothing it does then reaches outside it: every namespace new,
    a mount namespace among them. Otherwise it waits for the go first."""
    sc.prctl(sc.PR_SET_DUMPABLE, 0)  # before any namespace is joined
    if ctx.own_mount_ns and not any(p for _, p in ctx.namespaces):
        _unshare(ctx.new_ns - {"pid", "cgroup"})
        # the cgroup namespace after the move: the container's cgroup is its root
        ctx.placed = lambda: _placed(ctx, chan, ctx.new_ns & {"cgroup"})
        ctx.early = True
    else:
        chan.expect("go")
        _join(ctx)
        _unshare(ctx.new_ns - {"pid"})
    init.run_init(ctx, chan, exec_listener)  # execs or raises


def _placed(ctx, chan, later):
    ctx.placed = _nothing
    chan.expect("go")
    _unshare(later)


def _nothing():
    pass


def _direct(ctx):
    """True when create may fork init itself (no intermediate is needed)."""
    return not ctx.rootless and not any(
        t in ("user", "time") or (t == "pid" and p is not None) for t, p in ctx.namespaces)


def _join(ctx):
    joined = [(t, p) for t, p in ctx.namespaces if p is not None]
    if ctx.rootless:
        # Unprivileged, we may join the others only as root of the user namespace.
        joined.sort(key=lambda tp: (tp[0] != "user", tp[0] == "mount"))
    else:
        # Root of the host joins the others first, with its privileges, then the user
        # namespace (a joined namespace need not belong to it: runc's "wrong userns
        # owner"); mount before user, as it changes our root.
        joined.sort(key=lambda tp: (tp[0] == "user", tp[0] == "mount"))
    for t, p in joined:
        fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(fd, NAMESPACES[t][0])
        except OSError as e:
            raise OcirtError(f"linux.namespaces: cannot join {t} namespace {p}: {e.strerror}")
        finally:
            os.close(fd)


def _fork_init(ctx):
    """fork() with init born in a new pid namespace when the config asks for one."""
    if "pid" not in ctx.new_ns:
        return os.fork()
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _unshare({"pid"})  # for our children only: we stay where we are
        try:
            return os.fork()
        finally:
            if os.getpid() != 1:  # in the parent: later children are ours again
                sc.setns(own, sc.CLONE_NEWPID)
    finally:
        os.close(own)


def _unshare(types):
    flags = 0
    for t in types:
        flags |= NAMESPACES[t][0]
    if flags:
        try:
            sc.unshare(flags)
        except OSError as e:
            raise OcirtError(f"linux.namespaces: cannot create namespaces "
                             f"{sorted(types)}: {e.strerror}")


def _mapped(uid, map_file="/proc/self/uid_map"):
    try:
        with open(map_file) as f:
            for line in f:
                inside, _, count = (int(x) for x in line.split())
                if inside <= uid < inside + count:
                    return True
    except OSError:
        pass
    return False


def _write_time_offsets(offsets):
    lines = []
    for clock, key in (("monotonic", "monotonic"), ("boottime", "boottime")):
        if clock in offsets:
            o = offsets[clock]
            lines.append(f"{key} {o.get('secs', 0)} {o.get('nanosecs', 0)}\n")
    fd = os.open("/proc/self/timens_offsets", os.O_WRONLY | os.O_CLOEXEC)
    try:
        for line in lines:
            os.write(fd, line.encode())
    finally:
        os.close(fd)


def _write_id_maps(ctx, pid):
    ctx.setgroups_denied = userns.write_maps(ctx.cfg, pid)
