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

The D-Bus client is jeepney, imported here only (this path alone needs it). The
system manager is reached over the system bus (DBUS_SYSTEM_BUS_ADDRESS, else
/run/dbus/system_bus_socket), else directly over /run/systemd/private; a non-root
caller talks to its user manager (DBUS_SESSION_BUS_ADDRESS, else
$XDG_RUNTIME_DIR/bus, else $XDG_RUNTIME_DIR/systemd/private).

"Non-root" means the uid systemd sees (owner_uid): uid 0 in a user namespace made
by an unprivileged user (rootlesskit's, under rootless Docker) is that user, whose
user manager places the container, as runc does. That uid is read from
/proc/self/uid_map (our uid's id in the parent namespace); inside such a namespace
the EXTERNAL authentication sends no identity, so the bus takes the kernel's peer
credentials (SO_PEERCRED, the uid as the bus daemon sees it) instead of ours.
"""
import os

from ..errors import ConfigError, OcirtError

FIELD = "linux.cgroupsPath"
TIMEOUT = float(os.environ.get("OCIRT_SYSTEMD_TIMEOUT", "30"))
KEEPER_DIR = "keeper"
CONTAINER_DIR = "container"
_UNIT_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\")

_SD = "org.freedesktop.systemd1"
_SD_PATH = "/org/freedesktop/systemd1"
_MANAGER = "org.freedesktop.systemd1.Manager"


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


def _initial_userns():
    from ..rootless import in_initial_userns
    return in_initial_userns()


def owner_uid(uid_map="/proc/self/uid_map"):
    """The uid systemd and the bus daemon know this process by: the effective uid,
    or, in a user namespace other than the initial one, what it maps to in the
    parent namespace (rootlesskit maps 0 to the user who started it). None when
    the map does not cover it."""
    euid = os.geteuid()
    try:
        with open(uid_map) as f:
            rows = [line.split() for line in f]
    except OSError:
        return euid
    if [r for r in rows if r] == [["0", "0", "4294967295"]]:
        return euid  # the initial user namespace
    for r in rows:
        try:
            inside, outside, count = (int(x) for x in r)
        except ValueError:
            continue
        if inside <= euid < inside + count:
            return outside + euid - inside
    return None


def is_user():
    """Talk to a user manager rather than the system's? True for a non-root caller
    and for root of a user namespace whose uid 0 is an unprivileged user outside
    (rootless Docker's rootlesskit, rootless Podman); False for real root and for
    a namespace that maps uid 0 to 0."""
    if os.geteuid() != 0:
        return True
    uid = owner_uid()
    return uid is not None and uid != 0


def _user_uid():
    """The uid whose /run/user/<uid> holds the user manager's sockets."""
    uid = owner_uid()
    return os.geteuid() if uid is None else uid


def running():
    """Does a systemd manager we would talk to run? (the system one for root)"""
    if not is_user():
        return os.path.isdir("/run/systemd/system")
    return bool(_endpoints(True))


# --- a minimal blocking D-Bus connection over jeepney's message codec ----------------

class DBusError(OcirtError):
    def __init__(self, name, text):
        self.name = name
        self.text = text
        super().__init__(f"{name}: {text}" if text else name)


def _socket_paths(address):
    out = []
    for part in address.split(";"):
        kind, _, rest = part.partition(":")
        if kind != "unix":
            continue
        kv = dict(x.split("=", 1) for x in rest.split(",") if "=" in x)
        if "path" in kv:
            out.append(_unescape(kv["path"]))
        elif "abstract" in kv:
            out.append("\0" + _unescape(kv["abstract"]))
    return out


def _unescape(v):
    out, i = [], 0
    while i < len(v):
        if v[i] == "%" and i + 2 < len(v):
            out.append(chr(int(v[i + 1:i + 3], 16)))
            i += 3
        else:
            out.append(v[i])
            i += 1
    return "".join(out)


def _endpoints(user):
    """[(socket path, is a message bus)] to try, in order."""
    eps = []
    if user:
        xdg = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{_user_uid()}"
        addr = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        for p in _socket_paths(addr) if addr else [os.path.join(xdg, "bus")]:
            eps.append((p, True))
        eps.append((os.path.join(xdg, "systemd", "private"), False))
    else:
        addr = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        for p in _socket_paths(addr) if addr else ["/run/dbus/system_bus_socket"]:
            eps.append((p, True))
        eps.append(("/run/systemd/private", False))
    return [(p, b) for p, b in eps if p.startswith("\0") or os.path.exists(p)]


class Conn:
    """One connection to a systemd manager: through a bus (Hello, AddMatch) or
    directly to its private socket (peer to peer, no bus daemon)."""

    def __init__(self, path, bus, timeout=TIMEOUT):
        import _socket as socket
        from jeepney.low_level import Parser
        self.path, self.bus = path, bus
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.settimeout(timeout)
        self.parser = Parser()
        self.serial = 0
        self.signals = []
        try:
            self.sock.connect(path)
            authenticate(self.sock, None if not _initial_userns() else os.geteuid())
            if bus:
                from jeepney.bus_messages import message_bus
                self.call(message_bus.Hello())
        except BaseException:
            self.sock.close()
            raise

    def close(self):
        self.sock.close()

    def _recv(self, deadline):
        import time
        while True:
            msg = self.parser.get_next_message()
            if msg is not None:
                return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            data = self.sock.recv(65536)  # TimeoutError when `left` runs out
            if not data:
                raise ConnectionResetError("systemd closed the D-Bus connection")
            self.parser.add_data(data)

    def call(self, msg, timeout=TIMEOUT):
        """Send a method call; return the reply's body, or raise DBusError. Signals
        that arrive meanwhile are kept in self.signals."""
        import time
        from jeepney.low_level import HeaderFields, MessageType
        self.serial += 1
        serial = self.serial
        self.sock.sendall(msg.serialise(serial=serial))
        deadline = time.monotonic() + timeout
        while True:
            m = self._recv(deadline)
            h = m.header
            if h.message_type == MessageType.signal:
                self.signals.append(m)
                continue
            if h.fields.get(HeaderFields.reply_serial) != serial:
                continue
            if h.message_type == MessageType.error:
                name = h.fields.get(HeaderFields.error_name, "error")
                text = m.body[0] if m.body and isinstance(m.body[0], str) else ""
                raise DBusError(name, text)
            return m.body

    def wait_signal(self, pred, timeout):
        import time
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.signals):
                if pred(m):
                    return self.signals.pop(i)
            self.signals.clear()
            m = self._recv(deadline)
            if m.header.message_type.name == "signal":
                self.signals.append(m)


class AuthError(OcirtError):
    pass


def authenticate(sock, uid):
    """The SASL exchange of a D-Bus connection: EXTERNAL with `uid` as the identity,
    or with none when `uid` is None (the server then takes the peer credentials
    the kernel gives it: what a process in a user namespace must do, as its own
    uid means nothing to a bus daemon outside). Leaves the socket after BEGIN."""
    from binascii import hexlify
    if uid is None:
        sock.sendall(b"\0AUTH EXTERNAL\r\n")
    else:
        sock.sendall(b"\0AUTH EXTERNAL " + hexlify(str(uid).encode()) + b"\r\n")
    buf = b""
    while True:
        while b"\r\n" not in buf:
            data = sock.recv(1024)
            if not data:
                raise ConnectionResetError("connection closed during authentication")
            buf += data
            if len(buf) > 16384:
                raise AuthError("D-Bus authentication: reply too long")
        line, buf = buf.split(b"\r\n", 1)
        if line.startswith(b"OK"):
            sock.sendall(b"BEGIN\r\n")
            return
        if line.startswith(b"DATA") and uid is None:
            sock.sendall(b"DATA\r\n")  # the empty identity: "use my credentials"
            continue
        who = "the caller's credentials" if uid is None else f"uid {uid}"
        raise AuthError(f"Authentication failed for {who} "
                        f"({line.decode(errors='replace')[:80]})")


def _manager_call(conn, method, signature, *args, timeout=TIMEOUT):
    from jeepney import DBusAddress, new_method_call
    addr = DBusAddress(_SD_PATH, bus_name=_SD, interface=_MANAGER)
    return conn.call(new_method_call(addr, method, signature, args), timeout=timeout)


def _get_property(conn, obj, iface, name):
    from jeepney import DBusAddress, new_method_call
    addr = DBusAddress(obj, bus_name=_SD, interface="org.freedesktop.DBus.Properties")
    return conn.call(new_method_call(addr, "Get", "ss", (iface, name)))[0][1]


def connect(user):
    """A connection to the manager (system, or the caller's user manager), or an
    OcirtError that says which sockets were tried."""
    try:
        from jeepney import MatchRule
        from jeepney.bus_messages import message_bus
    except ImportError:
        raise OcirtError("--systemd-cgroup needs the Python package jeepney (a D-Bus "
                         "client): pip install jeepney") from None
    eps = _endpoints(user)
    errs = []
    for path, bus in eps:
        try:
            conn = Conn(path, bus)
        except (OSError, TimeoutError, DBusError, AuthError, ValueError) as e:
            errs.append(f"{path}: {getattr(e, 'strerror', None) or e}")
            continue
        if bus:
            try:
                rule = MatchRule(type="signal", sender=_SD, interface=_MANAGER,
                                 member="JobRemoved", path=_SD_PATH)
                conn.call(message_bus.AddMatch(rule))
            except (OSError, TimeoutError, DBusError) as e:
                conn.close()
                errs.append(f"{path}: AddMatch: {e}")
                continue
        try:
            # systemd sends job signals on a bus only to subscribed clients
            _manager_call(conn, "Subscribe", "")
        except DBusError:
            pass
        except (OSError, TimeoutError) as e:
            conn.close()
            errs.append(f"{path}: {e}")
            continue
        return conn
    who = (f"the systemd user manager of uid {_user_uid()}" if user else "systemd")
    tried = "; ".join(errs) if errs else "no D-Bus socket found (" + ", ".join(
        p for p, _ in (_all_endpoints(user))) + ")"
    raise OcirtError(f"--systemd-cgroup: cannot reach {who} over D-Bus: {tried}")


def _all_endpoints(user):
    if user:
        xdg = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{_user_uid()}"
        return [(os.path.join(xdg, "bus"), True), (os.path.join(xdg, "systemd/private"), False)]
    return [("/run/dbus/system_bus_socket", True), ("/run/systemd/private", False)]


def _wait_job(conn, job, unit, what, timeout=TIMEOUT):
    """Wait until `job` is done (the JobRemoved signal, or, should none come, the job
    object gone); return its result ('done', 'failed', 'canceled', ...)."""
    import time
    deadline = time.monotonic() + timeout

    def ours(m):
        return (m.header.fields.get(_member_field()) == "JobRemoved"
                and len(m.body) >= 4 and m.body[1] == job)

    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise OcirtError(f"--systemd-cgroup: systemd did not finish the {what} job of "
                             f"{unit} within {timeout:g}s")
        try:
            return conn.wait_signal(ours, min(left, 0.5)).body[3]
        except TimeoutError:
            pass
        # no signal yet: is the job still there?
        try:
            _get_property(conn, job, "org.freedesktop.systemd1.Job", "State")
        except DBusError:
            state = _unit_state(conn, unit)
            return "done" if state in ("active", "inactive", None) else state


def _member_field():
    from jeepney.low_level import HeaderFields
    return HeaderFields.member


def _unit_state(conn, unit):
    """ActiveState of a loaded unit, None when systemd has no such unit."""
    try:
        obj = _manager_call(conn, "GetUnit", "s", unit)[0]
        return _get_property(conn, obj, "org.freedesktop.systemd1.Unit", "ActiveState")
    except DBusError as e:
        if e.name.endswith("NoSuchUnit") or e.name.endswith("UnknownObject"):
            return None
        raise


def manager_cgroup(user):
    """The manager's own cgroup (its ControlGroup property: for a user manager
    /user.slice/user-UID.slice/user@UID.service), or None when it can't be asked."""
    try:
        conn = connect(user)
    except OcirtError:
        return None
    try:
        return _get_property(conn, _SD_PATH, _MANAGER, "ControlGroup") or None
    except (DBusError, OSError, TimeoutError):
        return None
    finally:
        conn.close()


def undelegated(controllers):
    """Which of `controllers` the systemd user manager has not been given (absent
    from its cgroup's cgroup.controllers: user@UID.service's Delegate= lacks them).
    Returns (the manager's cgroup directory, the controllers it has, the missing
    ones in the order asked), or None when that can't be found out."""
    from . import fs
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
    import _signal as signal
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
    import _signal as signal
    from ..state import process_alive
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
                             f"{_user_uid()} is reachable (no D-Bus socket in "
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
        from ..state import proc_start_time
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
            job = _manager_call(conn, "StartTransientUnit", "ssa(sv)a(sa(sv))", unit,
                                "replace", props, [])[0]
        except DBusError as e:
            info = None  # systemd made nothing: nothing of it to stop
            raise _start_error(e, path, unit, slc) from None
        result = _wait_job(conn, job, unit, "start")
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
    from . import fs
    own = fs.own_cgroups(keeper)
    cg = own.get("") or own.get("name=systemd")
    if not cg:
        obj = _manager_call(conn, "GetUnit", "s", unit)[0]
        cg = _get_property(conn, obj, "org.freedesktop.systemd1.Scope", "ControlGroup")
    if not cg or not cg.endswith("/" + unit):
        raise OcirtError(f"--systemd-cgroup: the keeper of {unit} is in cgroup {cg!r}, "
                         "not in the unit's")
    return cg


def _settle(info, cgpath, keeper, mode):
    """Remember the scope's directories; on v2 move the keeper into a leaf of its own
    so that the scope's cgroup may enable controllers for the container's leaf."""
    from . import fs
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
        _manager_call(conn, "AttachProcessesToUnit", "ssau", info["unit"], "/" + sub,
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
            job = _manager_call(conn, "StopUnit", "ss", unit, "replace")[0]
        except DBusError as e:
            if not (e.name.endswith("NoSuchUnit") or "not loaded" in e.text):
                raise
        else:
            _wait_job(conn, job, unit, "stop")
        state = _unit_state(conn, unit)
        if state == "failed":
            try:
                _manager_call(conn, "ResetFailedUnit", "s", unit)
            except DBusError:
                pass
    except (OcirtError, OSError, TimeoutError) as e:
        err = e
    finally:
        if own and conn is not None:
            conn.close()
    _kill_keeper(info.get("keeper"), info.get("keeper_start"))
    from . import fs
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
        from ..log import LOG
        LOG.warning(msg)
