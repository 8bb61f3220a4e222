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
"""
import os

from .. import syscalls as sc
from ..errors import ConfigError


def wanted(m):
    return bool(m.get("uidMappings") or m.get("gidMappings")) or any(
        o in ("idmap", "ridmap") for o in m.get("options") or [])


def _map_text(entries):
    return "".join(f"{e['containerID']} {e['hostID']} {e['size']}\n" for e in entries)


def prepare(cfg, bundle):
    """{mount index: fd of its detached idmapped tree}; the caller closes them once
    init has its copies. Every failure names the mount."""
    from .mounts import parse_options
    out = {}
    users = {}  # map text -> user namespace fd, shared by mounts with the same mappings
    try:
        for i, m in enumerate(cfg.get("mounts") or []):
            if not wanted(m):
                continue
            where = f"mounts[{i}]"
            opts = parse_options(m.get("options"), where)
            if not (opts.is_bind or m.get("type") == "bind"):
                raise ConfigError(where, "idmapped mounts are only supported for bind mounts")
            userns = _userns_of(cfg, m, where, users)
            out[i] = _idmapped_tree(m, bundle, opts, userns, where)
    except BaseException:
        for fd in out.values():
            os.close(fd)
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


def _idmapped_tree(m, bundle, opts, userns, where):
    source = m.get("source") or ""
    if not source.startswith("/"):
        source = os.path.join(bundle, source)
    recursive_tree = bool(opts.flags & sc.MS_REC)
    try:
        fd = sc.open_tree(-100, source, sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC
                          | (sc.AT_RECURSIVE if recursive_tree else 0))
    except OSError as e:
        raise ConfigError(f"{where}.source", f"cannot open {source}: {e.strerror}") from None
    try:
        sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH
                         | (sc.AT_RECURSIVE if opts.idmap == "ridmap" else 0),
                         sc.MOUNT_ATTR_IDMAP, userns_fd=userns)
    except OSError as e:
        os.close(fd)
        hint = " (the filesystem may not support idmapped mounts)" if e.errno == 22 else ""
        raise ConfigError(where, f"cannot idmap {source}: {e.strerror}{hint}") from None
    return fd
