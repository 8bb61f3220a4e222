"""The D-Bus client of --systemd-cgroup (systemd.py places the scope; this module only
talks to a systemd manager): which manager and which sockets, the connection and its
authentication, method calls and signals, jobs and unit states.

The message codec is jeepney's, imported here only (this path alone needs it). The
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

Imports only os and ocirt.errors (and jeepney when a connection is made).
"""
import os
import time
from binascii import hexlify
import _socket as socket

from ..errors import OcirtError
from ..syscalls import unescape
try:
    from jeepney import DBusAddress, MatchRule, new_method_call
    from jeepney.bus_messages import message_bus
    from jeepney.low_level import HeaderFields, MessageType, Parser
except ImportError:  # connect() says what is missing
    MatchRule = None

TIMEOUT = float(os.environ.get("OCIRT_SYSTEMD_TIMEOUT", "30"))
SD = "org.freedesktop.systemd1"
SD_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
_UID_MAP = "/proc/self/uid_map"
_IDENTITY = [["0", "0", "4294967295"]]  # the initial user namespace's uid_map


# --- which manager ------------------------------------------------------------------

def _uid_map(path):
    """The rows of a uid_map, or None when it can't be read."""
    try:
        with open(path) as f:
            return [r for r in (line.split() for line in f) if r]
    except OSError:
        return None


def _initial_userns():
    rows = _uid_map(_UID_MAP)
    return rows is None or rows == _IDENTITY


def owner_uid(uid_map=_UID_MAP):
    """The uid systemd and the bus daemon know this process by: the effective uid,
    or, in a user namespace other than the initial one, what it maps to in the
    parent namespace (rootlesskit maps 0 to the user who started it). None when
    the map does not cover it."""
    euid = os.geteuid()
    rows = _uid_map(uid_map)
    if rows is None or rows == _IDENTITY:
        return euid
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


def user_uid():
    """The uid whose /run/user/<uid> holds the user manager's sockets."""
    uid = owner_uid()
    return os.geteuid() if uid is None else uid


def running():
    """Does a systemd manager we would talk to run? (the system one for root)"""
    if not is_user():
        return os.path.isdir("/run/systemd/system")
    return bool(_endpoints(True))


# --- where ---------------------------------------------------------------------------

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
    """D-Bus address values escape bytes as %XX."""
    return unescape(v, "%", 2, 16)


def _endpoints(user):
    """[(socket path, is a message bus)] to try, in order."""
    eps = []
    if user:
        xdg = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{user_uid()}"
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


def _all_endpoints(user):
    if user:
        xdg = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{user_uid()}"
        return [(os.path.join(xdg, "bus"), True), (os.path.join(xdg, "systemd/private"), False)]
    return [("/run/dbus/system_bus_socket", True), ("/run/systemd/private", False)]


# --- a minimal blocking D-Bus connection over jeepney's message codec ----------------

class DBusError(OcirtError):
    def __init__(self, name, text):
        self.name = name
        self.text = text
        super().__init__(f"{name}: {text}" if text else name)


class AuthError(OcirtError):
    pass


class Conn:
    """One connection to a systemd manager: through a bus (Hello, AddMatch) or
    directly to its private socket (peer to peer, no bus daemon)."""

    def __init__(self, path, bus, timeout=TIMEOUT):
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
                self.call(message_bus.Hello())
        except BaseException:
            self.sock.close()
            raise

    def close(self):
        self.sock.close()

    def _recv(self, deadline):
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
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.signals):
                if pred(m):
                    return self.signals.pop(i)
            self.signals.clear()
            m = self._recv(deadline)
            if m.header.message_type.name == "signal":
                self.signals.append(m)


def authenticate(sock, uid):
    """The SASL exchange of a D-Bus connection: EXTERNAL with `uid` as the identity,
    or with none when `uid` is None (the server then takes the peer credentials
    the kernel gives it: what a process in a user namespace must do, as its own
    uid means nothing to a bus daemon outside). Leaves the socket after BEGIN."""
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


def connect(user):
    """A connection to the manager (system, or the caller's user manager), or an
    OcirtError that says which sockets were tried."""
    if MatchRule is None:
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
                rule = MatchRule(type="signal", sender=SD, interface=MANAGER,
                                 member="JobRemoved", path=SD_PATH)
                conn.call(message_bus.AddMatch(rule))
            except (OSError, TimeoutError, DBusError) as e:
                conn.close()
                errs.append(f"{path}: AddMatch: {e}")
                continue
        try:
            # systemd sends job signals on a bus only to subscribed clients
            manager_call(conn, "Subscribe", "")
        except DBusError:
            pass
        except (OSError, TimeoutError) as e:
            conn.close()
            errs.append(f"{path}: {e}")
            continue
        return conn
    who = (f"the systemd user manager of uid {user_uid()}" if user else "systemd")
    tried = "; ".join(errs) if errs else "no D-Bus socket found (" + ", ".join(
        p for p, _ in (_all_endpoints(user))) + ")"
    raise OcirtError(f"--systemd-cgroup: cannot reach {who} over D-Bus: {tried}")


# --- the manager's API ------------------------------------------------------------------

def manager_call(conn, method, signature, *args, timeout=TIMEOUT):
    addr = DBusAddress(SD_PATH, bus_name=SD, interface=MANAGER)
    return conn.call(new_method_call(addr, method, signature, args), timeout=timeout)


def get_property(conn, obj, iface, name):
    addr = DBusAddress(obj, bus_name=SD, interface="org.freedesktop.DBus.Properties")
    return conn.call(new_method_call(addr, "Get", "ss", (iface, name)))[0][1]


def wait_job(conn, job, unit, what, timeout=TIMEOUT):
    """Wait until `job` is done (the JobRemoved signal, or, should none come, the job
    object gone); return its result ('done', 'failed', 'canceled', ...)."""
    deadline = time.monotonic() + timeout

    def ours(m):
        return (m.header.fields.get(HeaderFields.member) == "JobRemoved"
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
            get_property(conn, job, "org.freedesktop.systemd1.Job", "State")
        except DBusError:
            state = unit_state(conn, unit)
            return "done" if state in ("active", "inactive", None) else state


def unit_state(conn, unit):
    """ActiveState of a loaded unit, None when systemd has no such unit."""
    try:
        obj = manager_call(conn, "GetUnit", "s", unit)[0]
        return get_property(conn, obj, "org.freedesktop.systemd1.Unit", "ActiveState")
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
        return get_property(conn, SD_PATH, MANAGER, "ControlGroup") or None
    except (DBusError, OSError, TimeoutError):
        return None
    finally:
        conn.close()
