"""create: from a bundle to an init parked in the `created` state."""
import os
import _socket as socket  # the C module: `socket` imports selectors and enum

from .. import capabilities, cgroups, config, rootless as _rootless, state as statemod, syscalls
from ..container import Options
from ..errors import ConfigError, OcirtError
from ..log import _now
from ..process import attrs
from ..process.common import caller_fds, listen_fds as _listen_fds
from ..process.launcher import InitContext, spawn
from ..process import common
from ..lazy import (hooks, idmap as _idmap, init, intelrdt, mempolicy, mounts, need, netdev,
                    rootless_cgroup, seccomp, speed, terminal)


def create(cid, bundle=".", root=None, pid_file=None, console_socket=None, no_pivot=False,
           no_new_keyring=False, preserve_fds=0, rootless=None, console_receiver=None,
           park=True, pidfd_socket=None, stdio=None, opts=None):
    """Create container `cid` from `bundle`; return its init's host pid.

    `console_receiver`: a socket (one end of a pair) that gets the pty master when
    process.terminal is true and there is no console_socket (`run` relays it).
    `park`: init gives back its code pages while it waits (`run`, which starts it
    at once, says False: they would only fault back in).
    `stdio`: three fds that become init's 0, 1 and 2 (default: this process's own).
    `opts`: the call's Options (ocirt/container.py); `root` alone will do for the API."""
    opts = opts or Options(root=root)
    root = opts.state_root()
    if rootless is None:
        rootless = opts.rootless_wanted()
    if pid_file:
        check_pid_file(pid_file)
    c = statemod.Record(root, cid)
    bundle = os.path.abspath(bundle or ".")
    cfg = config.load(bundle)
    if not cfg.get("process"):
        raise ConfigError("process", "is required to create a container")
    rootfs = _rootfs(cfg, bundle)
    proc = cfg["process"]
    if proc.get("terminal") and not console_socket and console_receiver is None:
        raise ConfigError("process.terminal", "a terminal needs --console-socket "
                          "(or `ocirt run` in the foreground)")
    if console_socket and not proc.get("terminal"):
        raise OcirtError("--console-socket given but process.terminal is false")
    preserve = preserve_fds + _listen_fds()
    ctx = InitContext(cfg, bundle, rootfs, {
        "no_pivot": no_pivot, "no_new_keyring": no_new_keyring, "park": park,
        "preserve_fds": preserve, "console_socket": console_socket, "stdio": stdio})
    _prepare_security(ctx)
    ctx.rootless = _rootless.is_rootless() if rootless is None else bool(rootless)
    ctx.setgroups_denied = _rootless.check_config(cfg, ctx.rootless)
    netdevs = _netdevices(ctx)
    rdt = _intelrdt(cfg, cid)  # checked against the host before anything is made
    # Everything init will need after pivot_root is imported now, before the fork.
    need(init)
    syscalls.impl()  # load the shim once here, not in each forked child
    pidfd_conn = None
    if pidfd_socket:  # before anything is made: a bad socket leaves nothing behind
        pidfd_conn = common.connect_unix(pidfd_socket, "--pidfd-socket")
        ctx.close_in_child.append(pidfd_conn.fileno())
    c.make_dir()
    cg = listener = None
    init_pid = None
    try:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        dirfd = os.open(c.dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            listener.bind(f"/proc/self/fd/{dirfd}/exec.sock")
        finally:
            os.close(dirfd)
        listener.listen(1)
        if ctx.rootless:  # its cgroup set-up may fork (systemd)
            speed.before_fork()
        linux = cfg.get("linux") or {}
        hooks = cfg.get("hooks") or {}
        c.state = statemod.State(
            cid, bundle, rootfs, _rfc3339(), cfg.get("annotations"),
            host_mounts=not ctx.own_mount_ns, rootfs_bind=_rootfs_self_bind(ctx),
            hooks_poststop=hooks.get("poststop") or [],
            hooks_poststart=hooks.get("poststart") or [],
            # what `exec` needs, as created (later edits of config.json don't count)
            exec={"ociVersion": cfg.get("ociVersion"), "process": proc,
                  "namespaces": [n["type"] for n in linux.get("namespaces") or []],
                  "pid_joined": any(n.get("type") == "pid" and n.get("path")
                                    for n in linux.get("namespaces") or []),
                  "seccomp": linux.get("seccomp"),
                  "memoryPolicy": linux.get("memoryPolicy"),
                  "personality": linux.get("personality")})
        ctx.close_in_child.append(c._lockfd)
        ctx.state_for_hooks = lambda status="creating": _hook_state(c, status, ctx.init_pid)
        if proc.get("terminal"):
            ctx.console_conn = console_receiver or terminal.connect_console(console_socket)
        if rdt is not None:  # its group made and its schemata written before the fork
            rdt.apply()
            c.state.intelrdt = rdt.to_state()
        # The cgroup is validated now and made by the placement, after the fork: init
        # sets up what it may meanwhile (launcher.py).
        cg = _cgroup(cfg, cid, opts, ctx.rootless)
        ctx.cgroup = cg
        if mounts.idmap_needed(cfg, not ctx.rootless):  # after caller_fds was taken
            ctx.idmap_fds = _idmap.prepare(cfg, bundle, rootfs, not ctx.rootless,
                                           ctx.detached_locked, ctx.idmap_late)
        init_pid = spawn(ctx, listener, on_intermediate=_placement(cg, rdt))
        _close_idmap_fds(ctx)
        listener.close()
        listener = None
        c.state.cgroup = cg.to_state() if cg else None
        c.state.freezer = statemod.freezer_of(c.state.cgroup)
        c.state.pid = init_pid
        c.state.init_start = statemod.proc_start_time(init_pid)[0]
        if netdevs is not None:
            c.state.netdevices = netdevs.record()
        c.save()
        if pid_file:
            _write_pid_file(pid_file, init_pid)
        if pidfd_conn is not None:
            common.send_pidfd(pidfd_conn, init_pid, "standard")
            pidfd_conn = None
    except BaseException as e:
        if netdevs is not None:
            netdevs.rollback()  # before init's namespace goes, with virtual devices in it
        if pidfd_conn is not None:
            pidfd_conn.close()
        _close_idmap_fds(ctx)
        if listener is not None:
            listener.close()
        if init_pid:
            try:
                os.kill(init_pid, 9)
            except ProcessLookupError:
                pass
        oom = cg is not None and isinstance(e, OcirtError) and _oom_killed(cg)
        if cg is not None:
            cg.destroy()
        if rdt is not None:
            rdt.remove(force=True)  # all this create made, a closID group too
        if not ctx.own_mount_ns:
            mounts.unmount_below(rootfs, self_bind=_rootfs_self_bind(ctx))
        c.remove_dir()
        if oom:
            lim = (((cfg.get("linux") or {}).get("resources") or {}).get("memory")
                   or {}).get("limit")
            raise ConfigError("linux.resources.memory.limit" if lim else "linux.resources",
                              "container init was OOM-killed (memory limit "
                              f"{lim or ''} too low?)".replace("limit  ", "limit ")) from None
        raise
    if netdevs is not None:
        netdevs.close()
    c.unlock()
    return init_pid


def _rootfs_self_bind(ctx):
    """A read-only root without a mount namespace: init binds the rootfs onto itself in
    the host's namespace and makes that read-only (delete unmounts it)."""
    return not ctx.own_mount_ns and bool((ctx.cfg.get("root") or {}).get("readonly"))


def _close_idmap_fds(ctx):
    for fd in list(ctx.idmap_fds.values()) + list(ctx.idmap_late.values()):
        os.close(fd)
    ctx.idmap_fds, ctx.idmap_late = {}, {}


def _oom_killed(cg):
    try:
        return cg.oom_kills() > 0
    except (OSError, OcirtError):
        return False


def _rootfs(cfg, bundle):
    root = cfg.get("root")
    if not root or not root.get("path"):
        raise ConfigError("root.path", "is required")
    path = os.path.join(bundle, root["path"])
    if not os.path.isdir(path):
        raise ConfigError("root.path", f"rootfs {path} does not exist or is not a directory")
    return os.path.realpath(path)


def _prepare_security(ctx):
    cfg = ctx.cfg
    linux = cfg.get("linux") or {}
    capabilities.parse((cfg.get("process") or {}).get("capabilities"), warn=True)
    if linux.get("seccomp"):
        ctx.seccomp = seccomp.build_filter(linux["seccomp"])
    if cfg.get("hooks"):
        ctx.hooks = hooks.Hooks(cfg["hooks"])
    attrs.check(cfg.get("process") or {})
    if "memoryPolicy" in linux:
        ctx.mempolicy = mempolicy.parse(linux["memoryPolicy"])
    if (cfg.get("process") or {}).get("terminal"):
        need(terminal)
    # fds the caller leaked to us (not stdio, not preserved): init closes them first
    ctx.close_in_child.extend(caller_fds(3 + ctx.preserve_fds))


def _netdevices(ctx):
    """linux.netDevices checked now; moved by spawn once init's namespace exists."""
    if not (ctx.cfg.get("linux") or {}).get("netDevices"):
        return None
    mover = netdev.Mover(*netdev.check(ctx.cfg, ctx.rootless))
    ctx.on_netns = mover.move
    return mover


def _intelrdt(cfg, cid):
    rdt = (cfg.get("linux") or {}).get("intelRdt")
    if rdt is None:
        return None
    m = intelrdt.Manager(rdt, cid)
    m.validate()
    return m


def _placement(cg, rdt):
    """spawn's on_intermediate: the cgroup made (if it was only planned) and joined,
    then the resctrl group (init inherits both from the intermediate)."""
    if cg is None and rdt is None:
        return None

    def place(pid):
        if cg:
            cg.make()
            cg.apply(pid)
        if rdt is not None:
            rdt.add_pid(pid)
    return place


def _cgroup(cfg, cid, opts, rootless=False):
    if rootless:  # a cgroup when one can be had; without one, no limit may be asked
        return rootless_cgroup.setup_cgroup(cfg, cid, systemd=opts.systemd_cgroup)
    return cgroups.setup(cfg, cid, systemd=opts.systemd_cgroup, defer=True)


def _hook_state(c, status, pid):
    st = c.state.oci(status)
    del st["rootfs"], st["created"], st["owner"]
    if pid:
        st["pid"] = pid  # init's, before the record has it
    else:
        del st["pid"]
    return st


def check_pid_file(path):
    """Before any process starts: the pid file's directory must exist."""
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise OcirtError(f"--pid-file {path}: directory {d} does not exist")


def _write_pid_file(path, pid):
    path = os.path.abspath(path)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as e:
        raise OcirtError(f"--pid-file {path}: {e.strerror}") from None


def _rfc3339():
    return _now()
