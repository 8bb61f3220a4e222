"""Rootless ocirt: what changes when the runtime has no real root.

* `--rootless auto|true|false` (global flag): auto means rootless when the
  effective uid is not 0 or when this process runs in a user namespace other
  than the initial one (rootless Podman runs the runtime inside its own).
* The default state root of an unprivileged user is $XDG_RUNTIME_DIR/ocirt
  (/run/user/$UID/ocirt when unset); a missing or unwritable directory is a
  one-line error (runtime_dir).
* Before the fork, check_config() refuses what the kernel would refuse later
  with a worse message: user namespaces disabled, a mapping that doesn't cover
  the process user, host ids outside /etc/subuid or /etc/subgid, supplementary
  groups when setgroups must be denied.
* cgroups (setup_cgroup): used when a writable cgroup can be had (a delegated
  cgroup v2 subtree); otherwise the container runs without one, unless the
  config asks for a resource limit: then create fails naming that field.

This module imports only os and ocirt.errors: `state` uses it on the hot path.
"""
import os

from .errors import ConfigError, OcirtError

MODE = "auto"
_MODES = ("auto", "true", "false")
_UID_MAP = "/proc/self/uid_map"
MAX_USER_NS = "/proc/sys/user/max_user_namespaces"
SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"
DOC = "docs/rootless.md"


# --- the mode -------------------------------------------------------------------

def set_mode(value):
    """Validate and remember the --rootless value."""
    global MODE
    v = str(value).strip().lower()
    if v not in _MODES:
        raise OcirtError(f"invalid --rootless value {value!r}: use auto, true or false")
    MODE = v


def in_initial_userns():
    """True in the initial user namespace, whose uid_map is the identity over the
    whole 32-bit range; a namespace made by another tool maps less."""
    try:
        with open(_UID_MAP, "rb") as f:
            return f.read().split() == [b"0", b"0", b"4294967295"]
    except OSError:
        return True


def is_rootless(mode=None):
    mode = mode or MODE
    if mode == "true":
        return True
    if mode == "false":
        return False
    return os.geteuid() != 0 or not in_initial_userns()


# --- the state root -------------------------------------------------------------

def default_root():
    """<runtime dir>/ocirt for an unprivileged user (or root in a user namespace
    with XDG_RUNTIME_DIR set), /run/user/0/ocirt for real root."""
    uid = os.geteuid()
    if uid != 0 or (os.environ.get("XDG_RUNTIME_DIR") and not in_initial_userns()):
        return os.path.join(runtime_dir(), "ocirt")
    return f"/run/user/{uid}/ocirt"


def runtime_dir():
    """$XDG_RUNTIME_DIR, or /run/user/$UID when unset: it must be an existing
    directory this user can write (it is not created: it belongs to the login
    session, made by pam_systemd or by an administrator)."""
    uid = os.geteuid()
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        path, name = xdg, f"XDG_RUNTIME_DIR={xdg}"
        if not xdg.startswith("/"):
            raise OcirtError(f"{name} is not an absolute path: set it to a directory you "
                             "own (usually /run/user/$UID) or pass --root")
    else:
        path = f"/run/user/{uid}"
        name = f"{path} (XDG_RUNTIME_DIR is unset)"
    hint = (f"create it owned by uid {uid} with mode 0700, set XDG_RUNTIME_DIR to a "
            "directory you own, or pass --root")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise OcirtError(f"{name} does not exist: {hint}") from None
    except OSError as e:
        raise OcirtError(f"{name}: {e.strerror}: {hint}") from None
    if (st.st_mode & 0o170000) != 0o040000:
        raise OcirtError(f"{name} is not a directory: {hint}")
    if not os.access(path, os.W_OK | os.X_OK, effective_ids=True):
        raise OcirtError(f"{name} is not writable by uid {uid}: {hint}")
    return path


# --- config checks before the fork ------------------------------------------------

def check_config(cfg, rootless):
    """Refuse, with one line naming the field, what a rootless create can't do.
    Returns True when the container stays in our own user namespace and that
    namespace denies setgroups (`unshare --map-root-user` makes such a one):
    init then must not call setgroups."""
    linux = cfg.get("linux") or {}
    nss = linux.get("namespaces") or []
    new_user = any(n.get("type") == "user" and not n.get("path") for n in nss)
    joins_user = any(n.get("type") == "user" and n.get("path") for n in nss)
    euid = os.geteuid()
    if new_user:
        check_userns_enabled()
        check_mappings(cfg)
    elif euid != 0 and not joins_user:
        raise ConfigError("linux.namespaces", f"running as uid {euid} (rootless) needs a "
                          "user namespace: add {\"type\": \"user\"} with linux.uidMappings "
                          "and linux.gidMappings (`ocirt spec --rootless` writes such a "
                          "config)")
    elif rootless and not joins_user and _setgroups_denied():
        if ((cfg.get("process") or {}).get("user") or {}).get("additionalGids"):
            raise ConfigError("process.user.additionalGids", "this user namespace denies "
                              "setgroups (/proc/self/setgroups is deny), so supplementary "
                              "groups can't be set; drop additionalGids")
        return True
    return False


def _setgroups_denied():
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "deny"
    except OSError:
        return False


def check_userns_enabled():
    try:
        with open(MAX_USER_NS) as f:
            limit = int(f.read().strip() or "0")
    except (OSError, ValueError):
        return  # no such knob: the kernel decides at unshare time
    if limit == 0:
        raise ConfigError("linux.namespaces", "user namespaces are disabled "
                          f"({MAX_USER_NS} is 0); ask the administrator to raise it, e.g. "
                          "sysctl user.max_user_namespaces=15000")


def _covers(maps, cid):
    return any(m["containerID"] <= cid < m["containerID"] + m["size"] for m in maps)


def self_mapping(maps, own):
    """The one mapping an unprivileged process may write itself: its own id, once."""
    return len(maps) == 1 and maps[0]["hostID"] == own and maps[0]["size"] == 1


def check_mappings(cfg):
    linux = cfg.get("linux") or {}
    uids = linux.get("uidMappings") or []
    gids = linux.get("gidMappings") or []
    for key, maps in (("uidMappings", uids), ("gidMappings", gids)):
        if not maps:
            raise ConfigError(f"linux.{key}", "a new user namespace needs linux.uidMappings"
                              " and linux.gidMappings")
        for i, m in enumerate(maps):
            if m["size"] < 1:
                raise ConfigError(f"linux.{key}[{i}].size", "must be at least 1")
    user = (cfg.get("process") or {}).get("user") or {}
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    if cfg.get("process") is not None:
        if not _covers(uids, uid):
            raise ConfigError("process.user.uid", f"uid {uid} is not mapped by "
                              f"linux.uidMappings ({_show(uids)}): the process user must be "
                              "one of the container ids the mapping covers")
        if not _covers(gids, gid):
            raise ConfigError("process.user.gid", f"gid {gid} is not mapped by "
                              f"linux.gidMappings ({_show(gids)})")
        for i, g in enumerate(user.get("additionalGids") or []):
            if not _covers(gids, g):
                raise ConfigError(f"process.user.additionalGids[{i}]", f"gid {g} is not "
                                  f"mapped by linux.gidMappings ({_show(gids)})")
    if os.geteuid() == 0:
        return  # root (here or in its own user namespace) writes the maps itself
    name = _user_name(os.geteuid())
    if not self_mapping(uids, os.geteuid()):
        _check_subids("uidMappings", uids, os.geteuid(), SUBUID, name, "newuidmap")
    if not self_mapping(gids, os.getegid()):
        _check_subids("gidMappings", gids, os.getegid(), SUBGID, name, "newgidmap")
    elif user.get("additionalGids") and cfg.get("process") is not None:
        raise ConfigError("process.user.additionalGids", "setgroups is denied in a user "
                          "namespace whose only gid mapping is your own gid (the kernel "
                          "requires it); map more gids from /etc/subgid or drop "
                          "additionalGids")


def _show(maps):
    return ", ".join(f"{m['containerID']}-{m['containerID'] + m['size'] - 1}"
                     f" -> {m['hostID']}-{m['hostID'] + m['size'] - 1}" for m in maps)


def _user_name(uid):
    try:
        import pwd
        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return None


def subid_ranges(path, name, own):
    """[(start, count)] of `path` (/etc/subuid format) for user `name` or id `own`."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) != 3 or line.startswith("#"):
                    continue
                if parts[0] == name or parts[0] == str(own):
                    try:
                        out.append((int(parts[1]), int(parts[2])))
                    except ValueError:
                        continue
    except FileNotFoundError:
        pass
    return out


def _subids_from_nss():
    """True when nsswitch.conf names a subid service: the files are not the truth."""
    try:
        with open("/etc/nsswitch.conf") as f:
            return any(line.split(":")[0].strip() == "subid" for line in f
                       if not line.lstrip().startswith("#"))
    except OSError:
        return False


def _check_subids(key, maps, own, path, name, tool):
    import shutil
    if shutil.which(tool) is None:
        raise ConfigError(f"linux.{key}", f"mapping more than your own id ({own}) needs "
                          f"{tool}, which is not installed (Debian/Ubuntu: apt install "
                          "uidmap)")
    if _subids_from_nss():
        return
    ranges = subid_ranges(path, name, own)
    who = name or own
    for i, m in enumerate(maps):
        lo, hi = m["hostID"], m["hostID"] + m["size"]
        if m["size"] == 1 and lo == own:
            continue  # newuidmap lets a user map their own id
        if not any(s <= lo and hi <= s + c for s, c in ranges):
            have = ", ".join(f"{s}-{s + c - 1}" for s, c in ranges) or "none"
            opt = "--add-subuids" if path == SUBUID else "--add-subgids"
            raise ConfigError(f"linux.{key}[{i}]", f"host ids {lo}-{hi - 1} are not in "
                              f"{path} for {who} (ranges: {have}); an administrator can add "
                              f"a range: usermod {opt} 100000-165535 {who}")


def unshare_error(e):
    """The one line for a failed unshare(CLONE_NEWUSER)."""
    import errno
    if e.errno == errno.ENOSPC:
        return ("linux.namespaces: cannot create a user namespace: the limit in "
                f"{MAX_USER_NS} is reached (0 disables them)")
    if e.errno == errno.EPERM:
        return ("linux.namespaces: cannot create a user namespace: not permitted (an LSM "
                "such as AppArmor's restrict_unprivileged_userns, a seccomp filter of the "
                "caller, or kernel.unprivileged_userns_clone=0 forbids it)")
    return f"linux.namespaces: cannot create a user namespace: {e.strerror}"


# --- cgroups ----------------------------------------------------------------------

_RES = "linux.resources"


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


def setup_cgroup(cfg, cid):
    """The container's cgroup when rootless, or None when there is none to be had
    and the config asks for no limit (the container then runs without one)."""
    from . import cgroups
    linux = cfg.get("linux") or {}
    res = linux.get("resources")
    wanted = requested_limits(res)
    dev = devices_without_cgroup(res)
    if dev:
        wanted.append(dev)
    path = linux.get("cgroupsPath")
    why = None
    use = cfg
    systemd = os.environ.get("OCIRT_SYSTEMD_CGROUP") == "1"
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
            return cgroups.setup(use, cid)
        except OcirtError as e:
            if systemd and wanted and isinstance(e, ConfigError):
                _explain_undelegated(wanted)  # raises when a controller is missing
            # no permission; or (--systemd-cgroup) no systemd manager that would
            # place us: a rootless container may still run without a cgroup
            if not _permission_error(e) and (not systemd or isinstance(e, ConfigError)):
                raise
            why = str(e)
    if wanted:
        if why.startswith("linux.cgroupsPath: "):
            why = why[len("linux.cgroupsPath: "):]
        raise ConfigError(wanted[0], f"cannot be applied rootless: no cgroup uid "
                          f"{os.geteuid()} may write ({why}); a resource limit needs a "
                          f"delegated cgroup v2 subtree (see {DOC})")
    from .log import LOG
    LOG.debug(f"rootless: running without a cgroup: {why}")
    return None


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
    from .cgroups import detect, systemd as sd
    try:
        if not sd.is_user() or detect() != "v2":
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
                      f"uid {sd._user_uid()} ({d}/cgroup.controllers has "
                      f"{' '.join(have) or 'none'}); {sd.DELEGATE_HINT}") from None


def _permission_error(e):
    import errno
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return True
        e = e.__cause__ or e.__context__
    s = str(e) if e is not None else ""
    return "Permission denied" in s or "Operation not permitted" in s


def _v2_mount():
    from .cgroups import fs
    for t, mp, root, _ in fs.cgroup_mounts():
        if t == "cgroup2":
            return mp, root
    return None, None


def own_v2_cgroup():
    from .cgroups import fs
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
    from .cgroups import fs
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
        return str(e)
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
    from .cgroups import mount_in_container
    return mount_in_container(target, opts, where, ctx.cgroup)


def _cover_mount_point(target, where):
    from . import syscalls as sc
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
    from . import syscalls as sc
    from .cgroups import fs
    from .rootfs.mounts import remount_bind
    flags = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
    kinds = {t for t, *_ in fs.cgroup_mounts()}
    try:
        if kinds == {"cgroup2"} and new_cgroupns:
            sc.mount("cgroup2", target, "cgroup2", flags, None)
            return
        # `target` is /proc/self/fd/N of the mount point: after the bind it still
        # names the directory below, so the new mount is reopened by name
        parent = os.open(target + "/..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            name = os.path.basename(os.readlink(target))
            sc.mount("/sys/fs/cgroup", target, None, sc.MS_BIND | sc.MS_REC, None)
            if flags:
                fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             dir_fd=parent)
                try:
                    remount_bind(f"/proc/self/fd/{fd}", flags)
                finally:
                    os.close(fd)
        finally:
            os.close(parent)
    except OSError as e:
        raise ConfigError(where, f"mounting the cgroup filesystem (rootless, no cgroup of "
                          f"its own): {e.strerror}") from None
