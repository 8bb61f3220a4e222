"""The container's init: pid 1 of the new namespaces, set up top to bottom, then
parked until `start` and replaced by the container's process with execve.

Runs after the fork in the intermediate; it must not import anything lazily
after pivot_root (the host's files are gone), so every module it uses is
imported by lifecycle/create.py in the create process, before the fork (this
module imports finalize.py, which holds the steps from the rlimits to execve,
shared with `ocirt exec`).
"""
import os
import _signal
import _socket as socket  # the C module: `socket` imports selectors and enum

from .. import syscalls as sc
from ..errors import ConfigError, OcirtError
from ..rootfs import devices, mounts
from . import attrs, finalize  # everything the finalize sequence uses, loaded before the fork
from .common import exec_error
from ..lazy import idmap  # only with idmapped mounts: create has loaded it then


def run_init(ctx, chan, exec_listener):
    """The whole init sequence. Never returns: execs or raises."""
    cfg = ctx.cfg
    proc = cfg.get("process") or {}
    new_ns = {t for t, p in ctx.namespaces if p is None}
    plan = InitPlan(ctx, chan, exec_listener)

    chan.debug(ctx.debug, "child process in init(): setting up the container")
    # Nothing in the container may open /proc/<init>/exe or ptrace us before execve.
    sc.prctl(sc.PR_SET_DUMPABLE, 0)
    os.setsid()

    # Up to ctx.placed(), init may not yet be in the container's cgroup (ctx.early,
    # launcher.py): only what stays inside its own new namespaces and allocates
    # little, by no measure of the image's or the user's, happens before it.
    if any(t == "uts" for t, _ in ctx.namespaces):  # new, or joined by path as runc allows
        if cfg.get("hostname"):
            sc.sethostname(cfg["hostname"])
        if cfg.get("domainname"):
            sc.setdomainname(cfg["domainname"])
    if "network" in new_ns:
        sc.if_up("lo")

    # --- the root filesystem (in the container's cgroup by its end)
    prepare_rootfs(ctx, chan)
    for key, value in ((cfg.get("linux") or {}).get("sysctl") or {}).items():
        sc.write_control("/proc/sys/" + key.replace(".", "/"), value, f"linux.sysctl.{key}")
    # --- process attributes that need no filesystem (finalize.py, P1-P5): the
    # scheduler and the CPUs after the cgroup placement (cpuset)
    finalize.prepare(plan)
    if ctx.hooks is not None:  # without hooks there is nothing to wait for
        chan.send("hooks", phase="createRuntime")
        ctx.init_pid = chan.expect("hooks-done").get("pid")  # our host pid, for hook state
        ctx.run_hooks("createContainer")
    enter_rootfs(ctx)
    # --- terminal: the pty from the container's devpts, bound on /dev/console
    # before the rootfs becomes read-only
    if proc.get("terminal"):
        ctx.setup_terminal()
    finish_rootfs(ctx)

    # --- rlimits, identity, fds, seccomp, `start`, execve (finalize.py, F1-F10)
    finalize.finalize(plan)


class InitPlan(finalize.Plan):
    """The finalize steps that are init's own."""

    def __init__(self, ctx, chan, exec_listener):
        linux = ctx.cfg.get("linux") or {}
        super().__init__(chan, ctx.cfg.get("process") or {}, debug=ctx.debug,
                         seccomp=ctx.seccomp, preserve_fds=ctx.preserve_fds,
                         setgroups_denied=ctx.setgroups_denied, mempolicy=ctx.mempolicy,
                         personality=linux.get("personality"))
        self.keyring = not ctx.no_new_keyring
        self.ctx = ctx
        self.listener = exec_listener
        self.conn = None  # from `ocirt start`, once it has connected

    def before_filter(self, argv0):
        # Memory: init may wait in `created` for long. Its code pages (interpreter and
        # libraries, ~4 MiB, clean page cache) are given back just before it blocks
        # (sc.park); the few it runs until its execve come back as minor faults. A
        # seccomp filter need not allow the maps read and madvise: with one, they
        # happen here, before it is loaded, and more pages come back before the wait.
        if self.seccomp is not None and self.ctx.park:
            _release_code()
        # Parked as pid 1 of its pid namespace, init would ignore every signal without a
        # handler (SIGKILL aside), so `kill TERM` of a created container would do nothing:
        # terminating signals end it, as they end runc's init (execve resets them).
        # (Before seccomp, which may refuse rt_sigaction.)
        for s in _TERMINATING:
            _signal.signal(s, _die)

    def handoff(self, env):
        chan = self.chan
        chan.debug(self.debug, "init: closing the pipe to signal completion (ready)")
        chan.send("ready")
        chan.close()
        self.conn = socket.socket(fileno=_wait_for_start(
            self.listener, self.seccomp is None and self.ctx.park))
        self.listener.close()
        try:
            self.ctx.run_hooks("startContainer", env)  # a hook without env gets the process's
        except OcirtError as e:
            self.conn.send(str(e).encode())
            os._exit(127)
        except OSError as e:  # reported as the exec's failure, as it always was
            self.exec_failed(self.proc["args"][0], e)

    def exec_failed(self, arg0, err):
        msg = exec_error(arg0, err)
        try:  # on the container's stderr too, as runc's init prints it (its first line)
            os.write(2, (msg + "\n").encode())
        except OSError:
            pass
        self.conn.send(PRINTED + msg.encode())  # start knows the process's stderr has it
        os._exit(127)


PRINTED = b"\x01"  # leads an error init has also printed on the container's stderr
_TERMINATING = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT,
                _signal.SIGUSR1, _signal.SIGUSR2, _signal.SIGALRM)


def _die(num, _frame):
    os._exit(128 + num)


def _release_code():
    try:
        sc.park()
    except OSError:
        pass  # only memory is at stake


def _wait_for_start(listener, release):
    """Block until `ocirt start` connects; the accepted fd."""
    if release:
        try:
            return sc.park(listener.fileno())  # MADV_DONTNEED of the code, then accept4
        except InterruptedError:
            pass  # a signal: its Python handler runs now; then wait as below
    return listener._accept()[0]


# --- rootfs ------------------------------------------------------------------

def prepare_rootfs(ctx, chan=None):
    """Mounts in the new mount namespace, before pivot_root."""
    cfg = ctx.cfg
    linux = cfg.get("linux") or {}
    rootfs = ctx.rootfs
    if ctx.own_mount_ns:
        # No mount event may propagate back to the host.
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE, None)
        sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC, None)
    # Without a mount namespace the mounts land in the host's (as with runc);
    # `delete` unmounts everything below the rootfs. A read-only root then needs a
    # mount of its own to remount: the rootfs bound onto itself (delete removes it).
    elif (cfg.get("root") or {}).get("readonly"):
        sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC, None)
    rootfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        label = (cfg.get("linux") or {}).get("mountLabel")
        if label and not attrs.selinux_enabled():
            label = None  # nothing to label (the parent said so)
        for i, m in enumerate(cfg.get("mounts") or []):
            if not mounts.before_placement(m):
                ctx.placed()
            tree = ctx.idmap_fds.get(i)
            if i in ctx.idmap_late:  # a source inside the rootfs, complete only now
                ctx.placed()
                tree = ctx.idmap_fds[i] = _idmap_late(ctx, chan, m, i)
            mounts.do_mount(rootfd, m, i, ctx.bundle, ctx.mount_cgroup, tree,
                            ctx.readonly_later, rootfs, ctx.detached_locked.get(i),
                            label)
        ctx.placed()  # device nodes under the devices controller, as runc makes them
        if devices.needs_dev_setup(cfg):
            devices.create_devices(rootfd, cfg, bind_from_host=_no_mknod(ctx))
            devices.create_links(rootfd)
            devices.setup_ptmx(rootfd)
        elif linux.get("devices"):
            devices.create_devices(rootfd, {"linux": {"devices": linux["devices"]}},
                                   bind_from_host=_no_mknod(ctx))
    finally:
        os.close(rootfd)
        for fd in list(ctx.idmap_fds.values()) + list(ctx.idmap_late.values()):
            os.close(fd)
        ctx.idmap_fds, ctx.idmap_late = {}, {}


def _idmap_late(ctx, chan, m, i):
    """The idmapped tree of a source inside the rootfs, cloned now that the mounts
    before it exist: by init itself, or, in a new user namespace (which may not
    idmap), by the create process's helper in our mount namespace (launcher.py)."""
    if "user" in ctx.new_ns:
        chan.send("idmap", index=i)
        msg = chan.expect("idmap-fd")
        if msg.get("message"):
            raise OcirtError(msg["message"])
        return msg["fds"][0]
    return idmap.idmap_now(m, ctx.bundle, mounts.parse_options(m.get("options"),
                                                               f"mounts[{i}]"),
                           ctx.idmap_late[i], f"mounts[{i}]")


def _no_mknod(ctx):
    """Device nodes are bind-mounted from the host, not made with mknod, in a user
    namespace: a new one, or the one a rootless caller (rootless Podman) runs us in."""
    return any(t == "user" for t, _ in ctx.namespaces) or getattr(ctx, "rootless", False)


def enter_rootfs(ctx):
    os.chdir(ctx.rootfs)
    if not ctx.own_mount_ns:
        os.chroot(".")  # pivot_root would move the host's root
    elif ctx.no_pivot:
        _hide_host_proc_and_sys(ctx.rootfs)
        sc.mount(ctx.rootfs, "/", None, sc.MS_MOVE, None)
        os.chroot(".")
    else:
        # pivot_root(".", ".") stacks the old root on top of the new one; the old
        # root is then made a slave (so unmounting it reaches no host mount) and detached.
        # "." after pivot_root is still the new root: go to the old one first, or the
        # rslave would strip the container's own mounts of their propagation ("shared").
        oldroot = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            sc.pivot_root(".", ".")
            os.fchdir(oldroot)
        finally:
            os.close(oldroot)
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC, None)
        sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def _hide_host_proc_and_sys(rootfs):
    """--no-pivot leaves the host's mounts under the chroot, in our mount namespace: a
    process that makes a user namespace in the container could then mount a fresh
    procfs (the kernel allows it when a fully visible one exists), without the masked
    paths. Every proc and sysfs mount outside the rootfs goes first (covered by an
    empty read-only tmpfs where it cannot be detached), as runc does."""
    inside = rootfs.rstrip("/") + "/"
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype = right.split()[0] if right else ""
            point = left.split()[4].replace("\\040", " ")
            if fstype in ("proc", "sysfs") and not (point + "/").startswith(inside):
                points.append(point)
    for point in sorted(points, key=len, reverse=True):
        try:
            sc.umount2(point, sc.MNT_DETACH)
        except OSError:
            try:
                sc.mount("tmpfs", point, "tmpfs", sc.MS_RDONLY, "size=0")
            except OSError:
                pass


def finish_rootfs(ctx):
    cfg = ctx.cfg
    linux = cfg.get("linux") or {}
    prop = linux.get("rootfsPropagation")
    if prop:
        if prop not in mounts.PROPAGATION:
            raise ConfigError("linux.rootfsPropagation", f"unknown propagation {prop!r}")
        sc.mount(None, "/", None, mounts.PROPAGATION[prop], None)
    for dest, flags in ctx.readonly_later:  # a read-only /dev, now that it is populated
        mounts.remount_bind(dest, flags | sc.MS_RDONLY)
    if (cfg.get("root") or {}).get("readonly"):
        mounts.remount_bind("/", sc.MS_RDONLY)
    masked = linux.get("maskedPaths") or []
    if not _protect(masked, False, "linux.maskedPaths"):
        for i, path in enumerate(masked):
            mask_path(path, f"linux.maskedPaths[{i}]")
    ro = linux.get("readonlyPaths") or []
    if not _protect(ro, True, "linux.readonlyPaths"):
        for i, path in enumerate(ro):
            readonly_path(path, f"linux.readonlyPaths[{i}]")


_PROTECT_ERRORS = {1: "cannot open {}", 2: "cannot mask {}", 4: "cannot make {} read-only"}


def _protect(paths, readonly, key):
    """All of `paths` in one shim call (the per-path Python below costs ~50 us each);
    False when that is not possible (a fake implementation, a NUL in a path)."""
    if not paths:
        return True
    if any("\0" in p for p in paths):
        return False
    first = {}  # each path once (a repeated one would be masked twice), by its first index
    for i, p in enumerate(paths):
        first.setdefault(p, i)
    uniq = list(first)
    r = sc.protect_paths(uniq, readonly)
    if r is None:
        return False
    rc, i, stage = r
    i = first[uniq[i]] if rc < 0 else i
    if rc < 0:
        where = f"{key}[{i}]"
        if stage == 3:
            raise ConfigError(where, "/dev/null in the container is not the null device")
        raise ConfigError(where, f"{_PROTECT_ERRORS[stage].format(paths[i])}: "
                          f"{os.strerror(-rc)}")
    return True


def _open_nofollow(path):
    """O_PATH fd of a container path: symlinks are followed inside the root only
    (a /proc that is a symlink to /elsewhere is still masked), never a magic link."""
    return sc.openat2(-100, path, os.O_PATH | os.O_CLOEXEC, 0,
                      sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS)


def _open_listed(path, where, loop_ok=False):
    """A maskedPaths/readonlyPaths entry: its O_PATH fd, or None when there is no such
    path (nothing to do) or, with `loop_ok`, it is a magic link or a loop (ELOOP)."""
    try:
        return _open_nofollow(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if loop_ok and e.errno == 40:  # ELOOP
            return None
        raise ConfigError(where, f"cannot open {path}: {e.strerror}") from None


def _fd_target(fd, path):
    """What to mount on for an fd of `path`: the fd's magic link, while /proc is there."""
    return f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else path


def mask_path(path, where):
    fd = _open_listed(path, where, loop_ok=True)  # a magic link is never masked through
    if fd is None:
        return
    try:
        target = _fd_target(fd, path)
        if os.path.isdir(target):
            sc.mount("tmpfs", target, "tmpfs", sc.MS_RDONLY, None)
        else:
            _bind_null_onto(target, where)
    except OSError as e:
        raise ConfigError(where, f"cannot mask {path}: {e.strerror}") from None
    finally:
        os.close(fd)


def _bind_null_onto(target, where):
    null = os.open("/dev/null", os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        st = os.fstat(null)
        # /dev/null could have been replaced by something else: check it
        if (st.st_mode & 0o170000) != 0o020000 or st.st_rdev != os.makedev(1, 3):
            raise ConfigError(where, "/dev/null in the container is not the null device")
        sc.mount(f"/proc/self/fd/{null}", target, None, sc.MS_BIND, None)
    finally:
        os.close(null)


def readonly_path(path, where):
    fd = _open_listed(path, where)
    if fd is None:
        return
    try:
        target = _fd_target(fd, path)
        sc.mount(target, target, None, sc.MS_BIND | sc.MS_REC, None)
        os.close(fd)
        fd = _open_nofollow(path)
        target = _fd_target(fd, path)
        mounts.remount_bind(target, sc.MS_RDONLY)
    except OSError as e:
        raise ConfigError(where, f"cannot make {path} read-only: {e.strerror}") from None
    finally:
        os.close(fd)
