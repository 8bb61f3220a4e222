"""config.json `mounts`: option translation and mounting inside the rootfs.

Destinations are resolved with openat2(RESOLVE_IN_ROOT) against the rootfs and the
mount is made onto /proc/self/fd/N of the resolved O_PATH fd, so a symlink in the
rootfs (even one swapped in during set-up) can't point a mount outside it.
"""
import os

from .. import syscalls as sc
from ..errors import ConfigError

_MS_I_VERSION = 1 << 23

# option -> (flags to set, flags to clear)
_FLAGS = {
    # mount(8): rw,suid,dev,exec,auto,nouser,async
    "defaults": (0, sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
                 | sc.MS_SYNCHRONOUS),
    "ro": (sc.MS_RDONLY, 0), "rw": (0, sc.MS_RDONLY),
    "nosuid": (sc.MS_NOSUID, 0), "suid": (0, sc.MS_NOSUID),
    "nodev": (sc.MS_NODEV, 0), "dev": (0, sc.MS_NODEV),
    "noexec": (sc.MS_NOEXEC, 0), "exec": (0, sc.MS_NOEXEC),
    "sync": (sc.MS_SYNCHRONOUS, 0), "async": (0, sc.MS_SYNCHRONOUS),
    "dirsync": (sc.MS_DIRSYNC, 0),
    "remount": (sc.MS_REMOUNT, 0),
    "mand": (sc.MS_MANDLOCK, 0), "nomand": (0, sc.MS_MANDLOCK),
    "noatime": (sc.MS_NOATIME, 0), "atime": (0, sc.MS_NOATIME),
    "nodiratime": (sc.MS_NODIRATIME, 0), "diratime": (0, sc.MS_NODIRATIME),
    "relatime": (sc.MS_RELATIME, 0), "norelatime": (0, sc.MS_RELATIME),
    "strictatime": (sc.MS_STRICTATIME, 0), "nostrictatime": (0, sc.MS_STRICTATIME),
    "lazytime": (sc.MS_LAZYTIME, 0), "nolazytime": (0, sc.MS_LAZYTIME),
    "nosymfollow": (sc.MS_NOSYMFOLLOW, 0), "symfollow": (0, sc.MS_NOSYMFOLLOW),
    "silent": (sc.MS_SILENT, 0), "loud": (0, sc.MS_SILENT),
    "iversion": (_MS_I_VERSION, 0), "noiversion": (0, _MS_I_VERSION),
    "bind": (sc.MS_BIND, 0), "rbind": (sc.MS_BIND | sc.MS_REC, 0),
}
PROPAGATION = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
# Flags that only a remount can change on a bind mount.
_BIND_ATTRS = (sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_NOATIME
               | sc.MS_NODIRATIME | sc.MS_RELATIME | sc.MS_STRICTATIME | sc.MS_NOSYMFOLLOW)


# "r"-prefixed options: mount attributes set on the whole tree (mount_setattr with
# AT_RECURSIVE), as runc has them: option -> (MOUNT_ATTR_* to set, to clear)
_ATTR_RDONLY, _ATTR_NOSUID, _ATTR_NODEV, _ATTR_NOEXEC = 0x1, 0x2, 0x4, 0x8
_ATTR_ATIME_MASK, _ATTR_NOATIME, _ATTR_STRICTATIME = 0x70, 0x10, 0x20
_ATTR_NODIRATIME, _ATTR_NOSYMFOLLOW = 0x80, 0x00200000
_RECURSIVE = {
    "rro": (_ATTR_RDONLY, 0), "rrw": (0, _ATTR_RDONLY),
    "rnosuid": (_ATTR_NOSUID, 0), "rsuid": (0, _ATTR_NOSUID),
    "rnodev": (_ATTR_NODEV, 0), "rdev": (0, _ATTR_NODEV),
    "rnoexec": (_ATTR_NOEXEC, 0), "rexec": (0, _ATTR_NOEXEC),
    "rnodiratime": (_ATTR_NODIRATIME, 0), "rdiratime": (0, _ATTR_NODIRATIME),
    "rrelatime": (0, _ATTR_ATIME_MASK), "rnorelatime": (0, 0),
    "rnoatime": (_ATTR_NOATIME, _ATTR_ATIME_MASK),
    "ratime": (0, 0), "rstrictatime": (_ATTR_STRICTATIME, _ATTR_ATIME_MASK),
    "rnostrictatime": (0, 0),
    "rnosymfollow": (_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, _ATTR_NOSYMFOLLOW),
}


class MountOptions:
    __slots__ = ("flags", "propagation", "data", "idmap", "copyup", "rec_set", "rec_clr",
                 "explicit", "cleared")

    def __init__(self, flags, propagation, data, idmap=None):
        self.flags, self.propagation, self.data = flags, propagation, data
        self.idmap = idmap  # None, "idmap" or "ridmap" (recursive)
        self.copyup = False  # tmpcopyup: the tmpfs starts with the directory's contents
        self.rec_set = self.rec_clr = 0  # MOUNT_ATTR_* for the whole tree
        # a flag option beyond bind/rbind was given: a bind mount then gets exactly
        # these flags (the source's others cleared, runc's rule), not the source's
        self.explicit = False
        self.cleared = 0  # MS_* flags an option asked to clear (rw, dev, suid, exec...)

    @property
    def is_bind(self):
        return bool(self.flags & sc.MS_BIND)


def parse_options(options, where="mounts"):
    flags = 0
    prop = []
    data = []
    idmap = None
    copyup = explicit = False
    rec_set = rec_clr = cleared = 0
    for i, opt in enumerate(options or []):
        if opt in _FLAGS:
            s, c = _FLAGS[opt]
            flags = (flags | s) & ~c
            explicit = explicit or opt not in ("bind", "rbind", "remount")
            if opt == "strictatime":  # asks for none of the other atime flags
                cleared |= sc.MS_NOATIME | sc.MS_NODIRATIME | sc.MS_RELATIME
            elif opt != "defaults":
                cleared = (cleared | c) & ~s
        elif opt in PROPAGATION:
            prop.append(PROPAGATION[opt])
        elif opt in ("idmap", "ridmap"):
            idmap = opt if idmap != "ridmap" else idmap
        elif opt in _RECURSIVE:
            a_set, a_clr = _RECURSIVE[opt]
            rec_set = (rec_set & ~a_clr) | a_set
            rec_clr = (rec_clr & ~a_set) | a_clr
        elif opt == "tmpcopyup":
            copyup = True
        elif opt.startswith("x-"):
            pass  # userspace-only options
        else:
            data.append(opt)
    o = MountOptions(flags, prop, ",".join(data), idmap)
    o.copyup, o.rec_set, o.rec_clr, o.explicit = copyup, rec_set, rec_clr, explicit
    o.cleared = cleared
    return o


def mount_type(m):
    t = m.get("type") or ""
    if t == "bind":  # some engines write the type instead of an option
        return ""
    return t


def is_bind(m):
    return parse_options(m.get("options")).is_bind or m.get("type") == "bind"


def idmap_wanted(m):
    return bool(m.get("uidMappings") or m.get("gidMappings")) or any(
        o in ("idmap", "ridmap") for o in m.get("options") or [])


def idmap_needed(cfg, binds=True):
    """Whether rootfs/idmap.prepare() has anything to do for this config (`binds`: the
    caller may clone mounts, i.e. it is not rootless); here, so that a config without
    idmapped mounts does not load that module."""
    ms = cfg.get("mounts") or []
    return any(idmap_wanted(m) for m in ms) or (binds and new_userns(cfg)
                                                and any(is_bind(m) for m in ms))


def new_userns(cfg):
    return any(n.get("type") == "user" and not n.get("path")
               for n in (cfg.get("linux") or {}).get("namespaces") or [])


_BEFORE_PLACEMENT = frozenset(("", "proc", "sysfs", "tmpfs", "devpts", "mqueue"))


def before_placement(m):
    """May init make this mount before it is in the container's cgroup? Yes for a bind
    and the kernel's small filesystems; no for a cgroup mount (it needs the cgroup),
    tmpcopyup (it fills memory by the image's measure) and any other filesystem."""
    opts = m.get("options") or []
    return mount_type(m) in _BEFORE_PLACEMENT and isinstance(opts, list) \
        and "tmpcopyup" not in opts


# --- resolving inside the rootfs ---------------------------------------------

def _fd_path(fd):
    return f"/proc/self/fd/{fd}"


def open_in_root(rootfd, path, flags=os.O_PATH):
    """O_PATH fd of `path` resolved as if rootfd were /; symlinks stay inside."""
    return sc.openat2(rootfd, path.lstrip("/") or ".", flags | os.O_CLOEXEC, 0,
                      sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS)


def make_in_root(rootfd, path, is_dir=True, mode=0o755):
    """Create `path` (and its parents) inside the rootfs; return an O_PATH fd to it.

    Symlinks on the way, dangling ones included, are followed as if rootfd were /
    (an absolute one restarts there, ".." stops there), each component opened with
    O_NOFOLLOW, so nothing is ever created outside the rootfs: an O_CREAT through
    a dangling /etc/hosts -> /root/x would otherwise make /root/x on the host."""
    try:
        return open_in_root(rootfd, path)
    except FileNotFoundError:
        pass
    todo = [p for p in path.split("/") if p and p != "."]
    stack = [os.dup(rootfd)]  # the dirs walked, for ".."
    links = 0
    try:
        while todo:
            part = todo.pop(0)
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            cur = stack[-1]
            try:
                st = os.stat(part, dir_fd=cur, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None and (st.st_mode & 0o170000) == 0o120000:
                links += 1
                if links > 40:
                    raise OSError(40, os.strerror(40), path)
                target = os.readlink(part, dir_fd=cur)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo = [p for p in target.split("/") if p and p != "."] + todo
                continue
            if st is None:
                if not todo and not is_dir:
                    os.close(os.open(part, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                     | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=cur))
                else:
                    os.mkdir(part, mode, dir_fd=cur)
            stack.append(os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur))
        return stack.pop()
    finally:
        for fd in stack:
            os.close(fd)


# --- mounting -----------------------------------------------------------------

_LABELLED = ("tmpfs", "devpts", "mqueue", "ramfs")  # what takes an SELinux context= (as runc)


def do_mount(rootfd, m, index, bundle, cgroup_mounter=None, idmapped=None, later=None,
             rootfs=None, locked=None, mount_label=None):
    """One entry of `mounts`; `idmapped`: the detached (maybe idmapped) tree the parent
    made for it (rootfs/idmap.py), attached here instead of a bind mount. `later`: a
    list that gets (destination, flags) of a read-only /dev, remounted so by the
    caller once the devices are in (runc's order). A destination that spells out the
    rootfs's host path (`rootfs`) is taken inside it, as runc takes it. `locked`: the
    flags of a cloned source that a user namespace must keep (the kernel locks them
    only in a copied namespace, so they are kept here: asked to clear one, refused).
    `mount_label`: linux.mountLabel, the SELinux context of the filesystems made here."""
    where = f"mounts[{index}]"
    dest = m["destination"]
    if rootfs and dest.startswith(rootfs.rstrip("/") + "/"):
        dest = dest[len(rootfs.rstrip("/")):]
    if not dest.startswith("/"):
        dest = "/" + dest
    opts = parse_options(m.get("options"), where)
    if m.get("type") == "bind":
        opts.flags |= sc.MS_BIND
    fstype = mount_type(m)
    source = m.get("source") or fstype or "none"
    if opts.is_bind and idmapped is not None:  # opened by the parent, maybe out of our reach
        src_is_dir = os.path.isdir(f"/proc/self/fd/{idmapped}")
    elif opts.is_bind:
        if not source.startswith("/"):
            source = os.path.join(bundle, source)
        try:
            src_is_dir = os.path.isdir(source)
            if not os.path.exists(source):
                raise FileNotFoundError
        except FileNotFoundError:
            raise ConfigError(f"{where}.source", f"{source} does not exist") from None
    else:
        src_is_dir = True
    existed = destfd = None  # the stat of a directory a tmpfs is to cover
    if fstype == "tmpfs":
        try:
            destfd = open_in_root(rootfd, dest)
            existed = os.fstat(destfd)
        except OSError:
            pass
    try:
        if destfd is None:
            destfd = make_in_root(rootfd, dest, is_dir=src_is_dir)
    except OSError as e:
        if fstype in ("proc", "sysfs") and e.errno == 17:  # a dangling symlink is there
            raise ConfigError(f"{where}.destination", f"{dest} must be mounted on ordinary "
                              "directory: a symlink is in its path") from None
        raise ConfigError(f"{where}.destination", f"cannot create {dest} in the rootfs: "
                          f"{e.strerror}") from None
    if fstype in ("proc", "sysfs"):
        destfd = _ordinary_dir(rootfd, dest, destfd, f"{where}.destination")
    target = _fd_path(destfd)
    try:
        if fstype == "cgroup" and cgroup_mounter is not None:
            cgroup_mounter(target, opts, where)
        elif opts.is_bind:
            if idmapped is not None:
                sc.move_mount(idmapped, "", destfd, "",
                              sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH)
            else:
                sc.mount(source, target, None, opts.flags & (sc.MS_BIND | sc.MS_REC), None)
            attrs = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
            if locked and (attrs or opts.explicit):
                if locked & opts.cleared:
                    raise PermissionError(1, "Operation not permitted (the source mount's "
                                          "flags are locked in a user namespace)")
                attrs |= locked
            if attrs or opts.explicit:
                # the fd now names the mount point below the new bind mount: reopen it
                os.close(destfd)
                destfd = open_in_root(rootfd, dest)
                remount_bind(_fd_path(destfd), attrs, opts.cleared)
        else:
            flags, data = opts.flags & ~sc.MS_REMOUNT, opts.data
            if fstype == "tmpfs":
                flags, data, copy_from = _tmpfs_plan(dest, flags, data, opts, existed,
                                                     target, later)
            if mount_label and fstype in _LABELLED and "context=" not in data:
                data = ",".join(x for x in (data, f'context="{mount_label}"') if x)
            sc.mount(source, target, fstype, flags, data or None)
            if fstype == "tmpfs" and copy_from is not None:
                os.close(destfd)
                destfd = open_in_root(rootfd, dest)
                _copy_up(copy_from, destfd, where)
        if opts.rec_set or opts.rec_clr:
            os.close(destfd)
            destfd = open_in_root(rootfd, dest)
            sc.mount_setattr(destfd, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE, opts.rec_set,
                             opts.rec_clr)
        if opts.propagation:
            os.close(destfd)
            destfd = open_in_root(rootfd, dest)
            for p in opts.propagation:
                sc.mount(None, _fd_path(destfd), None, p, None)
    except OSError as e:
        raise ConfigError(where, f"mounting {source} on {dest}"
                          f"{' (' + fstype + ')' if fstype else ''}: {e.strerror}") from None
    finally:
        os.close(destfd)


def _tmpfs_plan(dest, flags, data, opts, existed, target, later):
    """A tmpfs over a directory that was there takes its mode unless mode= is given
    (runc); a read-only /dev is mounted writable and made read-only once devices are
    in; tmpcopyup opens the directory before it is covered, for _copy_up."""
    if existed is not None and not any(d.startswith("mode=") for d in data.split(",")):
        data = ",".join(x for x in (data, f"mode={existed.st_mode & 0o7777:o}") if x)
    if dest.rstrip("/") == "/dev" and flags & sc.MS_RDONLY and later is not None:
        later.append((dest, flags & _BIND_ATTRS))
        flags &= ~sc.MS_RDONLY
    copy_from = None
    if opts.copyup and existed is not None:
        copy_from = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return flags, data, copy_from


def _copy_up(src, dst, where):
    """tmpcopyup: the covered directory's contents (`src`, an fd, closed here) into the
    new tmpfs (`dst`, an O_PATH fd): files, dirs, symlinks, devices and fifos, with
    their modes and owners. The tmpfs root takes the directory's mode and owner."""
    try:
        st = os.fstat(src)
        top = os.open(_fd_path(dst), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chmod(top, st.st_mode & 0o7777)
            os.chown(top, st.st_uid, st.st_gid)
            _copy_tree(src, top)
        finally:
            os.close(top)
    except OSError as e:
        raise ConfigError(where, f"tmpcopyup: {e.strerror}: {e.filename or ''}") from None
    finally:
        os.close(src)


def _copy_tree(src, dst):
    for e in os.scandir(src):
        st = e.stat(follow_symlinks=False)
        kind = st.st_mode & 0o170000
        name = e.name
        if kind == 0o040000:
            os.mkdir(name, 0o700, dir_fd=dst)
            s2 = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=src)
            d2 = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=dst)
            try:
                _copy_tree(s2, d2)
                os.chmod(d2, st.st_mode & 0o7777)
            finally:
                os.close(s2)
                os.close(d2)
        elif kind == 0o120000:
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
        elif kind == 0o100000:
            fi = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
            try:
                fo = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o600, dir_fd=dst)
                try:
                    while True:
                        chunk = os.read(fi, 1 << 20)
                        if not chunk:
                            break
                        os.write(fo, chunk)
                    os.chmod(fo, st.st_mode & 0o7777)
                finally:
                    os.close(fo)
            finally:
                os.close(fi)
        else:  # devices, fifos, sockets
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)


def _ordinary_dir(rootfd, dest, destfd, where):
    """proc and sysfs go on a real directory reached without a symlink (CVE-2019-19921,
    CVE-2023-27561: a /proc that is a symlink would put it where maskedPaths and the
    LSM's checks do not look). The same fd, reopened without symlinks; else refused."""
    try:
        fd = sc.openat2(rootfd, dest.lstrip("/"), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
                        0, sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_SYMLINKS)
    except OSError as e:
        os.close(destfd)
        why = "a symlink is in its path" if e.errno == 40 else (
            "it is not a directory" if e.errno == 20 else e.strerror)
        raise ConfigError(where, f"{dest} must be mounted on ordinary directory: {why}") \
            from None
    a, b = os.fstat(fd), os.fstat(destfd)
    os.close(destfd)
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
        os.close(fd)
        raise ConfigError(where, f"{dest} must be mounted on ordinary directory: "
                          "it changed while being set up")
    return fd


def remount_bind(target, attrs, cleared=0):
    """Apply mount flags to a bind mount, keeping the flags the kernel locked, unless
    the config asked to clear one of them (`cleared`): then EPERM stands (runc's rule;
    keeping it would ignore what was asked)."""
    flags = sc.MS_REMOUNT | sc.MS_BIND | attrs
    try:
        sc.mount(None, target, None, flags, None)
    except PermissionError:
        # In a user namespace, nodev/nosuid/noexec/atime flags inherited from a
        # mount owned by a more privileged namespace are locked and must be kept.
        st = os.statvfs(target)
        locked = 0
        for bit, mflag in ((os.ST_NOSUID, sc.MS_NOSUID), (os.ST_NODEV, sc.MS_NODEV),
                           (os.ST_NOEXEC, sc.MS_NOEXEC), (os.ST_NOATIME, sc.MS_NOATIME),
                           (os.ST_NODIRATIME, sc.MS_NODIRATIME),
                           (os.ST_RELATIME, sc.MS_RELATIME), (os.ST_RDONLY, sc.MS_RDONLY)):
            if st.f_flag & bit:
                locked |= mflag
        if locked & cleared:
            raise
        sc.mount(None, target, None, flags | locked, None)



def bind_onto(source, target, flags, recursive=False):
    """Bind `source` onto `target` (/proc/self/fd/N of the mount point), then apply
    `flags` to the new mount. After the bind the fd still names the directory below,
    so the new mount is reopened by name from its parent."""
    parent = os.open(target + "/..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        name = os.path.basename(os.readlink(target))
        sc.mount(source, target, None, sc.MS_BIND | (sc.MS_REC if recursive else 0), None)
        if flags:
            fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=parent)
            try:
                remount_bind(f"/proc/self/fd/{fd}", flags)
            finally:
                os.close(fd)
    finally:
        os.close(parent)

def unmount_below(rootfs, self_bind=False):
    """Detach every mount strictly below `rootfs` in this mount namespace, deepest first
    (what a container without its own mount namespace left on the host); with
    `self_bind`, then the bind of the rootfs onto itself that a read-only root needs
    there (the top mount at rootfs only: the engine's own stays)."""
    prefix = rootfs.rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                found.append(point)
    for point in sorted(found, key=len, reverse=True):
        try:
            sc.umount2(point, sc.MNT_DETACH)
        except OSError:
            pass
    if self_bind:
        try:
            sc.umount2(rootfs, sc.MNT_DETACH)
        except OSError:
            pass
