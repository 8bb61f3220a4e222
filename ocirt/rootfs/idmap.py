"""Idmapped bind mounts: mounts[].uidMappings/gidMappings, and the `idmap` / `ridmap`
options (runtime-spec 1.2).

Made by the create process, in the host's user and mount namespaces, before init is
forked: the kernel lets only a process privileged over the filesystem's superblock
(the host's root) idmap a mount, and only a mount not yet attached anywhere. So each
source is cloned with open_tree() into a detached tree, idmapped with
mount_setattr(MOUNT_ATTR_IDMAP) through a user namespace holding the mount's
mappings, and init, which inherits the fd, attaches it at its destination with
move_mount() in its own mount namespace (rootfs/mounts.do_mount).

The mappings are the mount's own, or, given neither but an `idmap`/`ridmap` option,
the container's: those of its new user namespace, or the user namespace it joins.
`ridmap` idmaps every mount of an rbind tree; otherwise only the top one is.

A container with a new user namespace gets every other bind mount whose source lies
outside its rootfs the same way, without the idmap: init, root of that namespace
only, may be unable to reach the source (a bundle directory other users cannot
enter), and a mount of the host's namespace could not be bound into its own anyway.
Sources inside the rootfs stay init's to mount, after the mounts before them.
"""
import os

from .. import syscalls as sc
from ..errors import ConfigError
from .mounts import idmap_wanted as wanted, is_bind, new_userns as _new_userns, parse_options


def _map_text(entries):
    return "".join(f"{e['containerID']} {e['hostID']} {e['size']}\n" for e in entries)


def _is_bind(m):
    return is_bind(m)


def prepare(cfg, bundle, rootfs, binds=True, locked=None, late=None):
    """{mount index: fd of its detached (idmapped) tree}; the caller closes them once
    init has its copies. Every failure names the mount. `binds`: as for mounts.idmap_needed().
    `locked` (a dict) gets, for each plain bind cloned, the flags its source has that
    the kernel would have locked in a copied namespace (mounts.do_mount keeps them).
    `late` (a dict) gets, for an idmapped source inside the rootfs, the fd of the
    user namespace to idmap it with: its tree is only complete once init has made the
    mounts before it, so init clones and idmaps it then (mounts.do_mount)."""
    out = {}
    locked = {} if locked is None else locked
    late = {} if late is None else late
    users = {}  # map text -> user namespace fd, shared by mounts with the same mappings
    userns = binds and _new_userns(cfg)
    inside = rootfs.rstrip("/") + "/"
    try:
        for i, m in enumerate(cfg.get("mounts") or []):
            where = f"mounts[{i}]"
            if not wanted(m):
                if userns and _is_bind(m):
                    src = _source(m, bundle)
                    if not (src + "/").startswith(inside):
                        fd = _detached_tree(m, bundle, parse_options(m.get("options"),
                                                                     where), where)
                        out[i] = fd
                        locked[i] = _lockable_flags(fd)
                continue
            opts = parse_options(m.get("options"), where)
            if not (opts.is_bind or m.get("type") == "bind"):
                raise ConfigError(where, "idmapped mounts are only supported for bind mounts")
            userns_fd = _userns_of(cfg, m, where, users)
            if (_source(m, bundle) + "/").startswith(inside):
                late[i] = os.dup(userns_fd)
                os.set_inheritable(late[i], False)
                continue
            out[i] = _idmapped_tree(m, bundle, opts, userns_fd, where)
    except BaseException:
        for fd in list(out.values()) + list(late.values()):
            os.close(fd)
        late.clear()
        raise
    finally:
        for fd in users.values():
            os.close(fd)
    return out


def _userns_of(cfg, m, where, users):
    linux = cfg.get("linux") or {}
    uid, gid = m.get("uidMappings"), m.get("gidMappings")
    if not uid and not gid:
        ns = [n for n in linux.get("namespaces") or [] if n.get("type") == "user"]
        if not ns:
            raise ConfigError(f"{where}.options", "idmap without uidMappings and gidMappings "
                              "takes the container's, but it has no user namespace")
        if ns[0].get("path"):
            key = "path:" + ns[0]["path"]
            if key not in users:
                try:
                    users[key] = os.open(ns[0]["path"], os.O_RDONLY | os.O_CLOEXEC)
                except OSError as e:
                    raise ConfigError(where, f"cannot open {ns[0]['path']}: {e.strerror}") \
                        from None
            return users[key]
        uid, gid = linux.get("uidMappings"), linux.get("gidMappings")
        if not uid or not gid:
            raise ConfigError(f"{where}.options", "idmap takes the container's mappings, but "
                              "linux.uidMappings and linux.gidMappings are not both set")
    key = _map_text(uid) + "/" + _map_text(gid)
    if key not in users:
        try:
            users[key] = sc.userns_fd(_map_text(uid), _map_text(gid))
        except OSError as e:
            raise ConfigError(where, f"cannot make a user namespace with its mappings: "
                              f"{e.strerror}") from None
    return users[key]


def _lockable_flags(fd):
    """MS_* flags of the mount `fd` names that a user namespace may not clear."""
    f = os.fstatvfs(fd).f_flag
    out = 0
    for bit, ms in ((os.ST_RDONLY, sc.MS_RDONLY), (os.ST_NOSUID, sc.MS_NOSUID),
                    (os.ST_NODEV, sc.MS_NODEV), (os.ST_NOEXEC, sc.MS_NOEXEC),
                    (os.ST_NOATIME, sc.MS_NOATIME), (os.ST_NODIRATIME, sc.MS_NODIRATIME),
                    (os.ST_RELATIME, sc.MS_RELATIME)):
        if f & bit:
            out |= ms
    return out


def _source(m, bundle):
    source = m.get("source") or ""
    return os.path.normpath(source if source.startswith("/") else os.path.join(bundle, source))


def _detached_tree(m, bundle, opts, where):
    """A detached copy of the source's mount tree (recursive for rbind)."""
    source = _source(m, bundle)
    try:
        return sc.open_tree(-100, source, sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC
                            | (sc.AT_RECURSIVE if opts.flags & sc.MS_REC else 0))
    except FileNotFoundError:
        raise ConfigError(f"{where}.source", f"{source} does not exist") from None
    except OSError as e:
        raise ConfigError(f"{where}.source", f"cannot open {source}: {e.strerror}") from None


def idmap_now(m, bundle, opts, userns, where):
    """In init (a `late` one): the source as init sees it, cloned and idmapped."""
    return _idmapped_tree(m, bundle, opts, userns, where)


def _idmapped_tree(m, bundle, opts, userns, where):
    source = _source(m, bundle)
    fd = _detached_tree(m, bundle, opts, where)
    try:
        sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH
                         | (sc.AT_RECURSIVE if opts.idmap == "ridmap" else 0),
                         sc.MOUNT_ATTR_IDMAP, userns_fd=userns)
    except OSError as e:
        os.close(fd)
        hint = " (the filesystem may not support idmapped mounts)" if e.errno == 22 else ""
        raise ConfigError(where, f"cannot idmap {source}: {e.strerror}{hint}") from None
    return fd
