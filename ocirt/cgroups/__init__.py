"""cgroups: one manager interface (base.Manager) over the v1 (v1.py) and v2 (v2.py)
drivers; the systemd placement (--systemd-cgroup, systemd.py) is a property of the
manager, not a driver of its own, and so is rootless (a manager or none).

create calls setup(cfg, cid) -> a manager, then manager.apply(pid) and
manager.to_state(), the record stored as State.cgroup; every later verb rebuilds the
manager with restore(record) and calls its methods (join, set, freeze, thaw, stats,
usage, oom_kills, pids, kill_all, signal_all, destroy). This module imports nothing
heavy.
"""
import os

from ..errors import ConfigError, OcirtError
from .fs import cgroup_mounts
from ..lazy import cgroup_v1, cgroup_v2, systemd as sd


def _cls(driver):
    if driver == "v2":
        return cgroup_v2.V2Cgroup
    return cgroup_v1.V1Cgroup


def restore(d):
    """The manager of a stored record (state.json's ocirt.cgroup), or None."""
    return _cls(d.get("driver")).from_state(d) if d else None


def detect(ms=None):
    """'v1' (one hierarchy per controller set; hybrid when a cgroup2 mount sits
    beside them) or 'v2' (unified), from this process's mounts (`ms`: the list of
    fs.cgroup_mounts(), when the caller has read it already)."""
    if ms is None:
        ms = cgroup_mounts()
    if any(t == "cgroup" for t, *_ in ms):
        return "v1"
    if any(t == "cgroup2" for t, *_ in ms):
        return "v2"
    raise OcirtError("no cgroup filesystem is mounted (neither cgroup nor cgroup2 in "
                     "/proc/self/mountinfo)")


def setup(cfg, cid, mode=None, systemd=False, defer=False):
    """Create the container's cgroup(s) and apply linux.resources: the manager. Every
    failure is a ConfigError naming the field, with everything created removed.
    `systemd`: --systemd-cgroup (Options.systemd_cgroup), a leaf of a transient scope
    that systemd makes (systemd.place).
    `defer`: only plan (validate) it; the caller's make() makes it (not with systemd,
    whose scope is made here)."""
    linux = cfg.get("linux") or {}
    path = linux.get("cgroupsPath")
    if path is not None and not isinstance(path, str):
        raise ConfigError("linux.cgroupsPath", "must be a string")
    ms = cgroup_mounts()  # read once: detect() and the driver's create() share it
    cls = _cls(mode or detect(ms))
    if not systemd:
        return (cls.plan if defer else cls.create)(cfg, cid, path, mounts=ms)
    # A transient scope from systemd; the container's cgroup is a leaf in it, made and
    # given linux.resources by the same driver code as a plain path.
    scope = sd.place(path, cid, cls.driver)
    try:
        cg = cls.create(cfg, cid, scope.path, mounts=ms)
    except BaseException:
        scope.abort()
        raise
    cg.placement = scope.info
    scope.release()
    return cg


def mount_in_container(target, opts, where, cgroup):
    """A config mount of type cgroup, in init before pivot_root (`cgroup`: the
    manager; rootless.mount_cgroup calls this)."""
    if cgroup is None:
        raise ConfigError(where, "a cgroup mount needs the container's cgroup")
    cgroup.mount_in_container(target, opts, where)


def sub_cgroups(args):
    """exec --cgroup: ["ctrl[,ctrl]:path", ...] or ["path"] -> {controller or "": path}
    (runc's forms), each path inside the container's cgroup."""
    out = {}
    for a in args:
        ctrls, sep, path = a.partition(":")
        if not sep:
            if len(args) != 1:
                raise OcirtError(f"invalid --cgroup argument {a!r} (missing <controller>: "
                                 "prefix)")
            ctrls, path = "", a
        for c in ctrls.split(",") if sep else [""]:
            if sep and not c:
                raise OcirtError(f"invalid --cgroup argument {a!r} (empty controller)")
            if c in out:
                raise OcirtError(f"invalid --cgroup: controller {c} given twice")
            clean = os.path.normpath("/" + path)
            if clean.startswith("/..") or ".." in path.split("/"):
                raise OcirtError(f"--cgroup {a}: bad sub cgroup path {path!r}")
            out[c] = clean.lstrip("/")
    return out
