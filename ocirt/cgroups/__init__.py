"""cgroups: one interface over the v1 (ocirt/cgroups/v1.py) and v2 (v2.py) drivers.

The create path calls setup(cfg, cid) -> Cgroup (or None), then Cgroup.add_pid and
Cgroup.to_state(); the stored dict (State.cgroup) is what every later verb
hands to the module functions below. This module imports nothing heavy: `state`
only needs is_frozen.
"""
import os

from ..errors import ConfigError, OcirtError  # noqa: F401


def _driver(d):
    if d.get("driver") == "v2":
        from . import v2
        return v2
    from . import v1
    return v1


def detect(ms=None):
    """'v1' (one hierarchy per controller set; hybrid when a cgroup2 mount sits
    beside them) or 'v2' (unified), from this process's mounts (`ms`: the list of
    fs.cgroup_mounts(), when the caller has read it already)."""
    if ms is None:
        from .fs import cgroup_mounts
        ms = cgroup_mounts()
    if any(t == "cgroup" for t, *_ in ms):
        return "v1"
    if any(t == "cgroup2" for t, *_ in ms):
        return "v2"
    raise OcirtError("no cgroup filesystem is mounted (neither cgroup nor cgroup2 in "
                     "/proc/self/mountinfo)")


def setup(cfg, cid, mode=None):
    """Create the container's cgroup(s) and apply linux.resources. Every failure is
    a ConfigError naming the field, with everything created removed."""
    linux = cfg.get("linux") or {}
    path = linux.get("cgroupsPath")
    if path is not None and not isinstance(path, str):
        raise ConfigError("linux.cgroupsPath", "must be a string")
    from .fs import cgroup_mounts
    ms = cgroup_mounts()  # read once: detect() and the driver's create() share it
    mode = mode or detect(ms)
    if mode == "v2":
        from .v2 import V2Cgroup as cls
    else:
        from .v1 import V1Cgroup as cls
    if os.environ.get("OCIRT_SYSTEMD_CGROUP") != "1":
        return cls.create(cfg, cid, path, mounts=ms)
    # A transient scope from systemd; the container's cgroup is a leaf in it, made and
    # given linux.resources by the same driver code as a plain path.
    from . import systemd
    scope = systemd.place(path, cid, mode)
    try:
        cg = cls.create(cfg, cid, scope.path, mounts=ms)
    except BaseException:
        scope.abort()
        raise
    cg.systemd = scope.info
    direct = cg.add_pid

    def add_pid(pid):
        try:
            direct(pid)
        except OcirtError as e:
            if "Permission denied" not in str(e) and "not permitted" not in str(e):
                raise
            # rootless: the move crosses a cgroup the caller does not own; systemd
            # may make it (into the delegated scope)
            systemd.attach(cg.systemd, pid)

    cg.add_pid = add_pid
    scope.release()
    return cg


def is_frozen(d):
    try:
        return _driver(d).is_frozen(d)
    except OSError:
        return False


def freeze(d):
    _driver(d).freeze(d)


def thaw(d):
    _driver(d).thaw(d)


def kill_all(d):
    """Thaw if frozen and SIGKILL every process in the cgroup, until it is empty."""
    _driver(d).kill_all(d)


def signal_all(d, signum):
    """kill --all: SIGKILL through kill_all; any other signal with the cgroup frozen
    meanwhile (when it can be), so no fork escapes it."""
    import _signal
    drv = _driver(d)
    if signum == _signal.SIGKILL:
        return drv.kill_all(d)
    froze = False
    if not is_frozen(d):
        try:
            drv.freeze(d)
            froze = True
        except (OcirtError, OSError):
            pass  # no freezer: signal them as they are
    from .fs import signal_pids
    try:
        signal_pids(drv.pids(d), signum)
    finally:
        if froze:
            drv.thaw(d)


def remove(d):
    """Kill leftovers and rmdir the dirs this container created (never others); with
    --systemd-cgroup, then stop the scope ocirt started."""
    try:
        _driver(d).remove(d)
    finally:
        if d.get("systemd"):
            from . import systemd
            systemd.stop(d["systemd"])


def pids(d):
    return _driver(d).pids(d)


def update(d, resources, field="linux.resources"):
    """Apply a LinuxResources object to a live container's cgroup."""
    _driver(d).update(d, resources, field)


def stats(d):
    """runc's `events --stats` data section."""
    return _driver(d).stats(d)


def usage(d):
    """The final-usage summary (CPU, peak memory, OOM kills, pids)."""
    return _driver(d).usage(d)


def oom_kills(d):
    return _driver(d).oom_kills(d)


def mount_in_container(target, opts, where, cgroup):
    """A config mount of type cgroup, in init before pivot_root."""
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


def join(d, pid, sub=None):
    """Move `pid` into the container's cgroup(s): `ocirt exec` puts its process
    there before the process joins the container's namespaces. One cgroup.procs
    write per directory, without loading a driver (exec's hot path). `sub`
    (sub_cgroups()): a cgroup below the container's, per controller."""
    dirs = [d["dir"]] if d.get("driver") == "v2" else [h[2] for h in d.get("hier") or []]
    if sub:
        dirs = _sub_dirs(d, sub)
    data = str(pid).encode()
    for path in dirs:
        try:
            fd = os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as e:
            if d.get("systemd") and isinstance(e, PermissionError):
                # rootless --systemd-cgroup: the move crosses a cgroup the caller
                # does not own; systemd may make it
                from . import systemd
                return systemd.attach(d["systemd"], pid)
            raise OcirtError(f"cgroup: adding pid {pid} to {path}: {e.strerror}") from None


def _sub_dirs(d, sub):
    if d.get("driver") == "v2":
        if set(sub) - {""}:
            raise OcirtError("--cgroup: cgroup v2 takes one path, without a controller")
        return [os.path.join(d["dir"], sub[""])]
    hier = d.get("hier") or []
    known = {c for key, _, _ in hier for c in key.split(",")}
    for c in sub:
        if c and c not in known:
            raise OcirtError(f"--cgroup: unknown controller {c!r}")
    out = []
    for key, _, path in hier:
        ctrls = key.split(",")
        rel = next((sub[c] for c in ctrls if c in sub), sub.get("", ""))
        out.append(os.path.join(path, rel) if rel else path)
    return out
