"""--systemd-cgroup: linux.cgroupsPath in systemd's slice:prefix:name form, placed by
systemd over its D-Bus API (a transient scope with Delegate=yes).

Layout of the scope `<slice>/<prefix>-<name>.scope` (delegated to ocirt):

    <scope>/keeper      a `sleep infinity` that holds the scope alive until delete
    <scope>/container   the container's cgroup: linux.resources, its processes

systemd stops a scope, and removes its cgroup, once no process is left in it: the
keeper keeps the container's cgroup, and with it the final usage figures, until
`ocirt delete`, which stops the unit (StopUnit; systemd kills the keeper and
removes the scope's cgroup). On cgroup v2 the scope's own cgroup holds no process
(the keeper sits in a leaf of its own), so controllers can be enabled for the
container's leaf (the no-internal-process rule). On v1 the keeper stays in the
scope's directory.

The D-Bus client (which manager, its sockets, authentication, calls, jobs) is
sdbus.py; this module names the unit, starts and stops it, and runs the keeper.
"""
import os
import _signal as signal

from ..errors import ConfigError, OcirtError
from ..status import proc_start_time, process_alive
from .sdbus import (DBusError, connect, get_property, is_user, manager_call,
                    manager_cgroup, running, unit_state, user_uid, wait_job)
from . import fs
from ..log import LOG

FIELD = "linux.cgroupsPath"
KEEPER_DIR = "keeper"
CONTAINER_DIR = "container"
_UNIT_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\")


# --- names --------------------------------------------------------------------------

def parse(path, cid, user=False):
    """'slice:prefix:name' -> (slice, unit name). Absent -> system.slice (user.slice
    for a user manager), ocirt-<id>.scope."""
    default = "user.slice" if user else "system.slice"
    if not path:
        return default, f"ocirt-{cid}.scope"
    parts = path.split(":")
    if len(parts) != 3:
        raise ConfigError(FIELD, f"{path!r}: with --systemd-cgroup the path must be "
                          "slice:prefix:name")
    slc, prefix, name = parts
    slc = slc or default
    if not slc.endswith(".slice") or "/" in slc:
        raise ConfigError(FIELD, f"{path!r}: {slc!r} is not a systemd slice name")
    stem = slc[:-len(".slice")]
    if slc != "-.slice" and (not stem or any(not p for p in stem.split("-"))
                             or not set(stem) <= _UNIT_CHARS):
        raise ConfigError(FIELD, f"{path!r}: {slc!r} is not a valid systemd slice name "
                          "(letters, digits, ':_.\\' and '-' between non-empty parts)")
    if not name:
        raise ConfigError(FIELD, f"{path!r}: the name part is empty")
    if name.endswith(".slice"):
        raise ConfigError(FIELD, f"{path!r}: a slice as the container's unit is not "
                          "supported by ocirt (it places containers in scopes)")
    unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    if not set(unit) <= _UNIT_CHARS or len(unit) > 255:
        raise ConfigError(FIELD, f"{path!r}: {unit!r} is not a valid systemd unit name "
                          "(letters, digits and ':-_.\\' only, at most 255 characters)")
    return slc, unit


def slice_path(slc):
    """system-foo-bar.slice -> /system.slice/system-foo.slice/system-foo-bar.slice"""
    if slc == "-.slice":
        return "/"
    stem = slc[:-len(".slice")]
    parts = stem.split("-")
    out = []
    for i in range(len(parts)):
        out.append("-".join(parts[:i + 1]) + ".slice")
    return "/" + "/".join(out)


def undelegated(controllers):
    """Which of `controllers` the systemd user manager has not been given (absent
    from its cgroup's cgroup.controllers: user@UID.service's Delegate= lacks them).
    Returns (the manager's cgroup directory, the controllers it has, the missing
    ones in the order asked), or None when that can't be found out."""
    cg = manager_cgroup(True)
    if not cg:
        return None
    for t, mp, root, _ in fs.cgroup_mounts():
        if t != "cgroup2":
            continue
        try:
            d = fs.under_mount(mp, root, cg)
            have = fs.read(os.path.join(d, "cgroup.controllers")).split()
        except (OcirtError, OSError):
            continue
        return d, have, [c for c in controllers if c not in have]
    return None


DELEGATE_HINT = ("delegate it to user@.service with a systemd drop-in, e.g. "
                 "/etc/systemd/system/user@.service.d/delegate.conf containing "
                 "\"[Service] Delegate=cpu cpuset io memory pids\" (two lines), then "
                 "`systemctl daemon-reload` and restart the user's manager (log out and "
                 "in, or `systemctl restart user@UID.service`)")


# --- the keeper ----------------------------------------------------------------------

def _spawn_keeper():
    """A detached process (its own session, stdio on /dev/null, no inherited fd)
    that waits on a pipe and then becomes `sleep infinity`. Returns (pid, the
    pipe's write end): write b"g" to let it exec; if the write end closes first
    (ocirt died), it exits."""
    r, w = os.pipe2(os.O_CLOEXEC)
    rp, wp = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            os.close(rp)
            os.setsid()
            k = os.fork()
            if k == 0:
                _keeper(r, signal)
            os.write(wp, str(k).encode())
        finally:
            os._exit(0)
    os.close(r)
    os.close(wp)
    try:
        data = b""
        while True:
            chunk = os.read(rp, 32)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(rp)
        os.waitpid(pid, 0)
    if not data:
        os.close(w)
        raise OcirtError("--systemd-cgroup: cannot start the scope's keeper process")
    return int(data), w


def _keeper(r, signal):
    try:
        for s in range(1, signal.NSIG):
            if s not in (signal.SIGKILL, signal.SIGSTOP):
                try:
                    signal.signal(s, signal.SIG_DFL)
                except (OSError, ValueError, RuntimeError):
                    pass
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        keep = {0, 1, 2, r}
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        os.chdir("/")
        go = os.read(r, 1)
        os.close(r)
        if go != b"g":
            os._exit(0)
        for exe in ("/usr/bin/sleep", "/bin/sleep"):
            try:
                os.execv(exe, ["ocirt-keeper", "infinity"])
            except OSError:
                pass
        while True:  # no sleep binary: wait here
            signal.pause()
    finally:
        os._exit(0)


def _kill_keeper(pid, start):
    if pid and process_alive(pid, start):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- placement -------------------------------------------------------------------------

class Scope:
    """A started scope: `path` is the container's cgroup path (in the hierarchy),
    `info` what later verbs need to stop the unit."""

    def __init__(self, info, path, gate):
        self.info = info
        self.path = path
        self._gate = gate

    def release(self):
        """Create succeeded this far: let the keeper become `sleep infinity`."""
        if self._gate is not None:
            try:
                os.write(self._gate, b"g")
            finally:
                os.close(self._gate)
                self._gate = None

    def abort(self):
        if self._gate is not None:
            os.close(self._gate)  # the keeper exits
            self._gate = None
        stop(self.info)


def place(path, cid, mode):
    """Start the transient scope for the container; return a Scope whose `path` is
    the cgroup path the container's cgroup gets (below the scope's), or fail with
    one line (a ConfigError naming linux.cgroupsPath for a bad name or a unit that
    exists). Nothing is left behind on failure."""
    user = is_user()
    slc, unit = parse(path, cid, user)
    if not running():
        if user:
            raise OcirtError(f"--systemd-cgroup: no systemd user manager of uid "
                             f"{user_uid()} is reachable (no D-Bus socket in "
                             f"$XDG_RUNTIME_DIR), so {unit} in {slc} cannot be created; "
                             "run without --systemd-cgroup")
        raise OcirtError(f"--systemd-cgroup: systemd is not running on this host (no "
                         f"/run/systemd/system), so {unit} in {slc} cannot be created; "
                         "run without --systemd-cgroup and a plain linux.cgroupsPath")
    conn = connect(user)
    keeper = gate = None
    info = None
    try:
        keeper, gate = _spawn_keeper()
        info = {"unit": unit, "slice": slc, "user": user, "keeper": keeper,
                "keeper_start": proc_start_time(keeper)[0], "scope_dirs": [],
                "keeper_dir": None}
        props = [
            ("Description", ("s", f"ocirt container {cid}")),
            ("Slice", ("s", slc)),
            ("Delegate", ("b", True)),
            ("PIDs", ("au", [keeper])),
            ("DefaultDependencies", ("b", False)),
            ("CollectMode", ("s", "inactive-or-failed")),
        ]
        if not user:
            props += [("MemoryAccounting", ("b", True)), ("CPUAccounting", ("b", True)),
                      ("IOAccounting", ("b", True)), ("TasksAccounting", ("b", True))]
        try:
            job = manager_call(conn, "StartTransientUnit", "ssa(sv)a(sa(sv))", unit,
                                "replace", props, [])[0]
        except DBusError as e:
            info = None  # systemd made nothing: nothing of it to stop
            raise _start_error(e, path, unit, slc) from None
        result = wait_job(conn, job, unit, "start")
        if result != "done":
            raise OcirtError(f"--systemd-cgroup: systemd could not start {unit} in {slc} "
                             f"(job result: {result})")
        cgpath = _unit_cgroup(conn, unit, keeper)
        _settle(info, cgpath, keeper, mode)
        return Scope(info, cgpath.rstrip("/") + "/" + CONTAINER_DIR, gate)
    except BaseException:
        if gate is not None:
            os.close(gate)
        if info is not None:
            try:
                stop(info, conn)
            except OcirtError:
                pass
        elif keeper:
            _kill_keeper(keeper, None)
        raise
    finally:
        conn.close()


def _start_error(e, path, unit, slc):
    if e.name.endswith("UnitExists"):
        return ConfigError(FIELD, f"{path!r}: systemd unit {unit} already exists (another "
                           "container, or a unit not made by ocirt, has that name)")
    if e.name.endswith("InvalidArgs") or e.name.endswith("NoSuchUnit") \
            or "invalid" in e.text.lower():
        return ConfigError(FIELD, f"{path!r}: systemd refused {unit} in {slc}: {e.text}")
    return OcirtError(f"--systemd-cgroup: StartTransientUnit {unit} in {slc} failed: {e}")


def _unit_cgroup(conn, unit, keeper):
    """The scope's cgroup path: where the keeper is (this process's view of the
    hierarchy), checked against the unit's ControlGroup property."""
    own = fs.own_cgroups(keeper)
    cg = own.get("") or own.get("name=systemd")
    if not cg:
        obj = manager_call(conn, "GetUnit", "s", unit)[0]
        cg = get_property(conn, obj, "org.freedesktop.systemd1.Scope", "ControlGroup")
    if not cg or not cg.endswith("/" + unit):
        raise OcirtError(f"--systemd-cgroup: the keeper of {unit} is in cgroup {cg!r}, "
                         "not in the unit's")
    return cg


def _settle(info, cgpath, keeper, mode):
    """Remember the scope's directories; on v2 move the keeper into a leaf of its own
    so that the scope's cgroup may enable controllers for the container's leaf."""
    dirs = []
    for t, mp, root, sopts in fs.cgroup_mounts():
        if mode == "v2" and t != "cgroup2":
            continue
        try:
            d = fs.under_mount(mp, root, cgpath)
        except OcirtError:
            continue
        if os.path.isdir(d) and d not in dirs:
            dirs.append(d)
    info["scope_dirs"] = dirs
    if mode != "v2":
        return
    scope = dirs[0] if dirs else None
    if scope is None:
        raise OcirtError(f"--systemd-cgroup: systemd made no cgroup for {info['unit']}")
    kd = os.path.join(scope, KEEPER_DIR)
    try:
        os.mkdir(kd, 0o755)
        info["keeper_dir"] = kd
        with open(os.path.join(kd, "cgroup.procs"), "w") as f:
            f.write(str(keeper))
    except OSError as e:
        raise OcirtError(f"--systemd-cgroup: cannot move the keeper of {info['unit']} into "
                         f"{kd}: {e.strerror}") from None


def attach(info, pid, sub=CONTAINER_DIR):
    """Ask the manager to move `pid` into <scope>/<sub> (AttachProcessesToUnit): for a
    caller that may not write cgroup.procs of the common ancestor of the process's
    cgroup and the scope's (cgroup v2 delegation containment; a user manager then
    asks the system manager). Raises OcirtError."""
    conn = connect(info.get("user", False))
    try:
        manager_call(conn, "AttachProcessesToUnit", "ssau", info["unit"], "/" + sub,
                      [pid])
    except DBusError as e:
        raise OcirtError(f"--systemd-cgroup: systemd cannot move pid {pid} into "
                         f"{info['unit']}/{sub}: {e}") from None
    finally:
        conn.close()


# --- removal -----------------------------------------------------------------------------

def stop(info, conn=None):
    """Stop the unit ocirt started (systemd kills the keeper and removes the scope's
    cgroup) and wait for it; if systemd cannot be reached, kill the keeper (systemd
    then stops the emptied scope by itself) and remove the directories ocirt made."""
    unit = info["unit"]
    own = conn is None
    err = None
    try:
        if own:
            conn = connect(info.get("user", False))
        try:
            job = manager_call(conn, "StopUnit", "ss", unit, "replace")[0]
        except DBusError as e:
            if not (e.name.endswith("NoSuchUnit") or "not loaded" in e.text):
                raise
        else:
            wait_job(conn, job, unit, "stop")
        state = unit_state(conn, unit)
        if state == "failed":
            try:
                manager_call(conn, "ResetFailedUnit", "s", unit)
            except DBusError:
                pass
    except (OcirtError, OSError, TimeoutError) as e:
        err = e
    finally:
        if own and conn is not None:
            conn.close()
    _kill_keeper(info.get("keeper"), info.get("keeper_start"))
    if info.get("keeper_dir"):
        fs.rmdir_tree(info["keeper_dir"])
    busy = []
    for d in info.get("scope_dirs") or []:
        # systemd removes the scope's cgroup when the unit stops; without systemd it
        # goes once the (killed) keeper has left it
        if os.path.isdir(d) and not fs.rmdir_tree(d):
            busy.append(d)
    if err is not None:
        msg = (f"--systemd-cgroup: stopping {unit}: {err}; its keeper was killed, so "
               "systemd drops the unit once it notices")
        if busy:
            raise OcirtError(f"{msg}, but cgroup {busy[0]} is still busy")
        # everything ocirt made is gone: delete may go on
        LOG.warning(msg)
