"""--systemd-cgroup from inside a user namespace (rootless Docker's rootlesskit, where
ocirt is uid 0): which manager is asked (owner_uid / is_user from /proc/self/uid_map),
which sockets are tried, the D-Bus EXTERNAL authentication without an identity, and
the one line naming a controller user@UID.service does not delegate."""
import os
import shutil
import socket
import subprocess
import threading

import pytest

from ocirt import rootless_cgroup as rootless
from ocirt.cgroups import sdbus, systemd
from ocirt.errors import ConfigError

IDENTITY = "         0          0 4294967295\n"
ROOTLESSKIT = "         0       1000          1\n         1     100000      65536\n"


def _map(tmp_path, text):
    p = tmp_path / "uid_map"
    p.write_text(text)
    return str(p)


def test_owner_uid(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert sdbus.owner_uid(_map(tmp_path, IDENTITY)) == 0
    assert sdbus.owner_uid(_map(tmp_path, ROOTLESSKIT)) == 1000
    monkeypatch.setattr(os, "geteuid", lambda: 5)
    assert sdbus.owner_uid(_map(tmp_path, ROOTLESSKIT)) == 100004
    assert sdbus.owner_uid(_map(tmp_path, IDENTITY)) == 5
    monkeypatch.setattr(os, "geteuid", lambda: 70000)
    assert sdbus.owner_uid(_map(tmp_path, ROOTLESSKIT)) is None
    # podman's "keep-id"-like map: 0 -> 0 inside a namespace is root's
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert sdbus.owner_uid(_map(tmp_path, "0 0 1\n1 100000 65536\n")) == 0
    assert sdbus.owner_uid(str(tmp_path / "absent")) == 0


@pytest.mark.parametrize("euid,owner,user", [
    (0, 0, False),        # real root, or a namespace mapping 0 to 0: the system manager
    (0, 1000, True),      # rootlesskit: the user's manager
    (0, None, False),     # unmapped: as runc, assume root
    (1000, 1000, True),   # a plain unprivileged caller
])
def test_is_user(monkeypatch, euid, owner, user):
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    monkeypatch.setattr(sdbus, "owner_uid", lambda *a: owner)
    assert sdbus.is_user() is user


def test_user_endpoints(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(sdbus, "owner_uid", lambda *a: 1000)
    bus = tmp_path / "bus"
    bus.write_text("")
    (tmp_path / "systemd").mkdir()
    (tmp_path / "systemd" / "private").write_text("")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert sdbus._endpoints(True) == [(str(bus), True),
                                        (str(tmp_path / "systemd" / "private"), False)]
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/b%75s")
    assert sdbus._endpoints(True)[0] == (str(bus), True)
    # no XDG_RUNTIME_DIR: /run/user/<the uid outside>, not /run/user/0
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    seen = []
    monkeypatch.setattr(os.path, "exists", lambda p: seen.append(p) or False)
    assert sdbus._endpoints(True) == []
    assert seen == ["/run/user/1000/bus", "/run/user/1000/systemd/private"]


def _fake_server(sock, script, got):
    """Answer each expected client line with a reply (None: close)."""
    buf = b""
    try:
        for expect, reply in script:
            while not buf.endswith(b"\r\n") or len(buf) < len(expect):
                data = sock.recv(1024)
                if not data:
                    return
                buf += data
            line, buf = buf[:len(expect)], buf[len(expect):]
            got.append(line)
            if reply is None:
                return
            sock.sendall(reply)
    finally:
        sock.close()


def _auth(uid, script):
    a, b = socket.socketpair()
    got = []
    t = threading.Thread(target=_fake_server, args=(b, script, got))
    t.start()
    try:
        sdbus.authenticate(a, uid)
    finally:
        a.close()
        t.join(5)
    return got


def test_authenticate_without_identity():
    got = _auth(None, [(b"\0AUTH EXTERNAL\r\n", b"DATA\r\n"),
                       (b"DATA\r\n", b"OK 0123456789abcdef\r\n"),
                       (b"BEGIN\r\n", None)])
    assert got == [b"\0AUTH EXTERNAL\r\n", b"DATA\r\n", b"BEGIN\r\n"]


def test_authenticate_with_uid():
    got = _auth(1000, [(b"\0AUTH EXTERNAL 31303030\r\n", b"OK 0123\r\n"),
                       (b"BEGIN\r\n", None)])
    assert got[0] == b"\0AUTH EXTERNAL 31303030\r\n"


def test_authenticate_rejected_is_one_clear_error():
    with pytest.raises(sdbus.AuthError) as e:
        _auth(None, [(b"\0AUTH EXTERNAL\r\n", b"REJECTED EXTERNAL\r\n")])
    assert "Authentication failed" in str(e.value) and "REJECTED" in str(e.value)


@pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="dbus-daemon is not "
                    "installed (apt-get install dbus)")
def test_real_bus_takes_the_empty_identity(tmp_path, monkeypatch):
    """dbus-daemon accepts EXTERNAL without an identity (it uses SO_PEERCRED): what
    Conn sends from inside a user namespace. Checked against a private bus."""
    path = tmp_path / "bus"
    conf = tmp_path / "bus.conf"
    conf.write_text(f"""<busconfig><type>session</type><listen>unix:path={path}</listen>
<auth>EXTERNAL</auth><policy context="default"><allow send_destination="*"/><allow receive_sender="*"/>
<allow own="*"/><allow user="*"/></policy></busconfig>""")
    d = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(250):
            if path.exists():
                break
            if d.poll() is not None:
                pytest.fail(f"dbus-daemon exited: {d.stderr.read().decode()}")
            threading.Event().wait(0.02)
        sent = []
        real = sdbus.authenticate
        monkeypatch.setattr(sdbus, "_initial_userns", lambda: False)
        monkeypatch.setattr(sdbus, "authenticate",
                            lambda sock, uid: sent.append(uid) or real(sock, uid))
        conn = sdbus.Conn(str(path), True, timeout=10)
        try:
            from jeepney import DBusAddress, new_method_call
            addr = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus",
                               interface="org.freedesktop.DBus")
            (bus_id,) = conn.call(new_method_call(addr, "GetId"))
            assert len(bus_id) == 32
        finally:
            conn.close()
        assert sent == [None]
    finally:
        d.kill()
        d.wait()


@pytest.mark.parametrize("field,ctrl", [
    ("linux.resources.memory.limit", "memory"), ("linux.resources.memory.swap", "memory"),
    ("linux.resources.cpu.quota", "cpu"), ("linux.resources.cpu.cpus", "cpuset"),
    ("linux.resources.cpu.mems", "cpuset"), ("linux.resources.pids.limit", "pids"),
    ("linux.resources.blockIO.weight", "io"), ("linux.resources.hugepageLimits[0]", "hugetlb"),
    ("linux.resources.unified.memory.high", "memory"), ("linux.resources.devices[0]", None),
])
def test_controller_of(field, ctrl):
    assert rootless.controller_of(field) == ctrl


def test_undelegated_controller_is_named(monkeypatch):
    from ocirt import cgroups
    monkeypatch.setattr(cgroups, "detect", lambda *a: "v2")
    monkeypatch.setattr(systemd, "is_user", lambda: True)
    monkeypatch.setattr(systemd, "user_uid", lambda: 1000)
    d = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service"
    monkeypatch.setattr(systemd, "undelegated",
                        lambda need: (d, ["cpu", "pids"], [c for c in need if c == "memory"]))
    with pytest.raises(ConfigError) as e:
        rootless._explain_undelegated(["linux.resources.pids.limit",
                                       "linux.resources.memory.limit"])
    msg = str(e.value)
    assert e.value.path == "linux.resources.memory.limit"
    assert "controller memory is not delegated" in msg and "uid 1000" in msg
    assert "Delegate=cpu cpuset io memory pids" in msg and "user@.service" in msg
    assert "\n" not in msg
    # everything delegated: not the cause, nothing raised here
    rootless._explain_undelegated(["linux.resources.pids.limit"])
    monkeypatch.setattr(systemd, "is_user", lambda: False)
    rootless._explain_undelegated(["linux.resources.memory.limit"])
