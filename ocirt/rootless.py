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
* cgroups (rootless_cgroup.py, loaded only by a rootless create): used when a
  writable cgroup can be had (a delegated cgroup v2 subtree); otherwise the
  container runs without one, unless the config asks for a resource limit: then
  create fails naming that field.

This module imports only os and ocirt.errors: `state` and `create` use it on the hot
path. The --rootless value is not kept here: create decides (Options.rootless_wanted,
else is_rootless()) and carries the answer in its InitContext.
"""
import os
import errno

from .errors import ConfigError, OcirtError
from .syscalls import read_control
from .lazy import pwd, shutil

_UID_MAP = "/proc/self/uid_map"
MAX_USER_NS = "/proc/sys/user/max_user_namespaces"
SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"
DOC = "docs/rootless.md"


# --- the mode -------------------------------------------------------------------

def in_initial_userns():
    """True in the initial user namespace, whose uid_map is the identity over the
    whole 32-bit range; a namespace made by another tool maps less."""
    try:
        with open(_UID_MAP, "rb") as f:
            return f.read().split() == [b"0", b"0", b"4294967295"]
    except OSError:
        return True


def is_rootless(mode="auto"):
    """--rootless `mode`: true, false, or (auto) whether this process lacks real root:
    a non-zero euid, or a user namespace other than the initial one."""
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
    return read_control("/proc/self/setgroups") == "deny"


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
    if e.errno == errno.ENOSPC:
        return ("linux.namespaces: cannot create a user namespace: the limit in "
                f"{MAX_USER_NS} is reached (0 disables them)")
    if e.errno == errno.EPERM:
        return ("linux.namespaces: cannot create a user namespace: not permitted (an LSM "
                "such as AppArmor's restrict_unprivileged_userns, a seccomp filter of the "
                "caller, or kernel.unprivileged_userns_clone=0 forbids it)")
    return f"linux.namespaces: cannot create a user namespace: {e.strerror}"


# --- the cgroup half (rootless_cgroup.py), imported when a rootless create needs it
