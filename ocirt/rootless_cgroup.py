"""Rootless ocirt's cgroups: the container's cgroup when one can be had, or none.

* setup_cgroup: a cgroup is used when one the user may write can be had (a delegated
  cgroup v2 subtree, or --systemd-cgroup with the user's systemd manager); otherwise
  the container runs without one, unless the config asks for a resource limit: then
  create fails naming that field (and, with a user manager that lacks the
  controller, the drop-in that delegates it).
* mount_cgroup: a config mount of type cgroup in a rootless container.

Imported only when a rootless create needs it (so the hot path of a root create
never loads it): create's _cgroup calls setup_cgroup; init's cgroup mounts come
through rootless.mount_cgroup. Why a cgroup can't be had is decided on
the errors' types and errno, never on their text.
"""
import errno
import os

from .errors import ConfigError, OcirtError
from .rootless import DOC
from . import syscalls as sc
from . import cgroups
from .log import LOG
from .cgroups import fs, mount_in_container
from .rootfs.mounts import bind_onto
from .lazy import systemd as sd

_RES = "linux.resources"
_PATH = "linux.cgroupsPath"


def requested_limits(res):
    """The JSON paths of every resource limit a config asks for (null, {} and []
    ask for nothing)."""
    out = []
    if not isinstance(res, dict):
        return out
    for sec, v in res.items():
        base = f"{_RES}.{sec}"
        if v is None or v == {} or v == []:
            continue
        if sec == "devices":
            continue  # see devices_enforced_without_cgroup
        if isinstance(v, dict):
            out.extend(f"{base}.{k}" for k, x in v.items() if x is not None and x != [])
        elif isinstance(v, list):
            out.extend(f"{base}[{i}]" for i in range(len(v)))
        else:
            out.append(base)
    return out


def devices_without_cgroup(res):
    """Device rules a container without a device cgroup can still honour: in a
    user namespace no device node can be created (mknod is refused) and host
    nodes are bind-mounted with the host's permissions, so a rule list that
    denies everything by default, then allows some devices, adds nothing the
    user namespace doesn't already enforce for the nodes the container is given.
    Anything else (a default allow) is a limit: return its JSON path."""
    rules = (res or {}).get("devices") if isinstance(res, dict) else None
    if not rules:
        return None
    first = rules[0]
    if not (first.get("allow") is False and first.get("type") in (None, "a")
            and first.get("major") in (None, -1) and first.get("minor") in (None, -1)):
        return f"{_RES}.devices[0]"
    return None


def setup_cgroup(cfg, cid, systemd=False):
    """The container's cgroup when rootless, or None when there is none to be had
    and the config asks for no limit (the container then runs without one).
    `systemd`: --systemd-cgroup (the user's systemd manager places it)."""
    linux = cfg.get("linux") or {}
    res = linux.get("resources")
    wanted = requested_limits(res)
    dev = devices_without_cgroup(res)
    if dev:
        wanted.append(dev)
    path = linux.get("cgroupsPath")
    why = None
    use = cfg
    if not systemd:
        mode = cgroups.detect()
        if mode == "v2":
            if not path:
                path, why = _default_v2_path(cid)
            if why is None:
                why = _v2_blocker(path)
            if why is None and path != linux.get("cgroupsPath"):
                use = dict(cfg, linux=dict(linux, cgroupsPath=path))
    if why is None:
        try:
            return cgroups.setup(use, cid, systemd=systemd)
        except OcirtError as e:
            if systemd and wanted and isinstance(e, ConfigError):
                _explain_undelegated(wanted)  # raises when a controller is missing
            # no permission; or (--systemd-cgroup) no systemd manager that would
            # place us: a rootless container may still run without a cgroup
            if not _permission_error(e) and (not systemd or isinstance(e, ConfigError)):
                raise
            why = _reason(e)
    if wanted:
        raise ConfigError(wanted[0], f"cannot be applied rootless: no cgroup uid "
                          f"{os.geteuid()} may write ({why}); a resource limit needs a "
                          f"delegated cgroup v2 subtree (see {DOC})")
    LOG.debug(f"rootless: running without a cgroup: {why}")
    return None


def _reason(e):
    """An error's line, inside a line about another field: without the field when it
    is linux.cgroupsPath (the line says it is about a cgroup)."""
    if isinstance(e, ConfigError) and e.path == _PATH:
        return e.message
    return str(e)


def controller_of(field):
    """The cgroup v2 controller a linux.resources field needs (None: not known)."""
    parts = field[len(_RES) + 1:].replace("[", ".").split(".") if field.startswith(_RES) \
        else []
    if not parts:
        return None
    sec = parts[0]
    if sec == "cpu":
        return "cpuset" if len(parts) > 1 and parts[1] in ("cpus", "mems") else "cpu"
    if sec == "unified" and len(parts) > 1:
        return parts[1] if parts[1] not in ("cgroup", "") else None
    return {"memory": "memory", "pids": "pids", "blockIO": "io",
            "hugepageLimits": "hugetlb", "rdma": "rdma"}.get(sec)


def _explain_undelegated(wanted):
    """--systemd-cgroup with a user manager (rootless Docker/Podman): when a limit
    failed because user@UID.service is not given its controller, say so in one
    line, naming the controller and how to delegate it. Returns when that is not
    the cause (or can't be found out)."""
    try:
        if not sd.is_user() or cgroups.detect() != "v2":
            return
    except OcirtError:
        return
    need = []
    for f in wanted:
        c = controller_of(f)
        if c and c not in need:
            need.append(c)
    if not need:
        return
    got = sd.undelegated(need)
    if not got or not got[2]:
        return
    d, have, missing = got
    field = next(f for f in wanted if controller_of(f) == missing[0])
    raise ConfigError(field, f"cannot be applied rootless: the cgroup v2 controller "
                      f"{missing[0]} is not delegated to the systemd user manager of "
                      f"uid {sd.user_uid()} ({d}/cgroup.controllers has "
                      f"{' '.join(have) or 'none'}); {sd.DELEGATE_HINT}") from None


def _permission_error(e):
    """Was `e` (or an error it was raised from) refused for lack of permission? By
    errno: an OSError's, or the one an OcirtError keeps."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (OSError, OcirtError)) and \
                e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return True
        e = e.__cause__ or e.__context__
    return False


def _v2_mount():
    for t, mp, root, _ in fs.cgroup_mounts():
        if t == "cgroup2":
            return mp, root
    return None, None


def own_v2_cgroup():
    return fs.own_cgroups().get("", "/")


def _default_v2_path(cid):
    """A sibling of our own cgroup, <parent>/ocirt-<id>: where a delegated subtree
    (systemd's user@UID.service, or one an administrator chowned) lets the user
    create cgroups, move processes and enable controllers, while our own cgroup
    holds processes and so can't enable controllers for a child."""
    own = own_v2_cgroup()
    if own in ("/", ""):
        return None, f"this process is in the root cgroup ({own}), which is not delegated"
    return f"{os.path.dirname(own.rstrip('/')) or '/'}/ocirt-{cid}".replace("//", "/"), None


def _v2_blocker(path):
    """Why the user can't create cgroup `path` and move a process into it (None
    when it looks possible): the directory must be creatable, and a process moves
    only with write access to cgroup.procs of the common ancestor of its old and
    new cgroups (cgroup v2 delegation containment)."""
    mp, mroot = _v2_mount()
    if mp is None:
        return "no cgroup2 filesystem is mounted"
    own = own_v2_cgroup()
    if not path.startswith("/"):
        path = own.rstrip("/") + "/" + path
    try:
        path = fs.clean_path(path)
        target = fs.under_mount(mp, mroot, path)
        common = os.path.commonpath([own, path])
        common_dir = fs.under_mount(mp, mroot, common)
    except OcirtError as e:
        return _reason(e)
    euid = os.geteuid()
    d = target
    while not os.path.isdir(d):
        parent = os.path.dirname(d)
        if parent == d or not parent.startswith(mp):
            break
        d = parent
    if d == target:
        if not os.access(os.path.join(d, "cgroup.procs"), os.W_OK, effective_ids=True):
            return f"cgroup {d} is not writable by uid {euid}"
    elif not os.access(d, os.W_OK | os.X_OK, effective_ids=True):
        return f"cgroup {d} is not writable by uid {euid} (no cgroup v2 subtree is delegated)"
    procs = os.path.join(common_dir, "cgroup.procs")
    if not os.access(procs, os.W_OK, effective_ids=True):
        return (f"{procs} is not writable by uid {euid}: a process moves from cgroup {own} "
                f"to {path} only through their common ancestor")
    return None


def mount_cgroup(ctx, target, opts, where):
    """A config mount of type cgroup, rootless. /sys is then usually the host's
    bound recursively (a fresh sysfs needs a network namespace the user owns), so
    `target` may already be a cgroup mount of the same superblock, where the
    kernel refuses a new cgroup2 mount (EBUSY) and the inherited mount can't be
    detached (it is locked to its parent): cover it with an empty tmpfs first."""
    _cover_mount_point(target, where)
    if ctx.cgroup is None:
        return mount_cgroup_without_own(target, opts, where, "cgroup" in ctx.new_ns)
    return mount_in_container(target, opts, where, ctx.cgroup)


def _cover_mount_point(target, where):
    try:
        if os.stat(target).st_dev == os.stat(os.path.join(target, "..")).st_dev:
            return
        sc.mount("tmpfs", target, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
                 "mode=755,size=4k")
    except OSError as e:
        raise ConfigError(where, f"covering the host's cgroup mount at {target}: "
                          f"{e.strerror}") from None


def mount_cgroup_without_own(target, opts, where, new_cgroupns):
    """A config mount of type cgroup for a container that has no cgroup: a fresh
    cgroup2 mount with a cgroup namespace on a v2 host (its root is the cgroup
    the container was started in), otherwise the host's /sys/fs/cgroup bound
    recursively; read-only unless the options say rw."""
    flags = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
    kinds = {t for t, *_ in fs.cgroup_mounts()}
    try:
        if kinds == {"cgroup2"} and new_cgroupns:
            sc.mount("cgroup2", target, "cgroup2", flags, None)
            return
        bind_onto("/sys/fs/cgroup", target, flags, recursive=True)
    except OSError as e:
        raise ConfigError(where, f"mounting the cgroup filesystem (rootless, no cgroup of "
                          f"its own): {e.strerror}") from None
