"""--systemd-cgroup for real: the real CLI asks systemd (over D-Bus) for a transient
scope with Delegate=yes, the container's cgroup is a leaf in it, the scope (and so
the final usage) outlives the container's process until `delete`, and every refusal
leaves nothing behind (no state dir, unit, cgroup or process).

systemd can't run on this (hybrid v1) host, so test_systemd_suite_in_the_guest runs
this file in the qemu guest booted with systemd as PID 1 and the system bus
(tests/vm: guest.run_in_guest(systemd=True)); there the other tests run. On the
host, test_without_systemd_fails_clearly checks the error when systemd is absent.
"""
import json
import os
import subprocess

import pytest

from helpers import assert_error, guest_harness, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FLAG = ("--systemd-cgroup",)
CGROOT = "/sys/fs/cgroup"


def _pid1():
    try:
        with open("/proc/1/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


SYSTEMD = os.path.isdir("/run/systemd/system") and _pid1() == "systemd"
IN_GUEST = os.environ.get("OCIRT_IN_GUEST") == "1"

need_systemd = pytest.mark.skipif(
    not SYSTEMD, reason="systemd is not PID 1 here: these tests run in the systemd guest "
    "(test_systemd_suite_in_the_guest)")


# --- host side ----------------------------------------------------------------------

def test_systemd_suite_in_the_guest():
    if IN_GUEST or SYSTEMD:
        pytest.skip("systemd runs here: the tests below run directly")
    guest = guest_harness("the --systemd-cgroup suite", systemd=True)
    cmd = (f"cd {REPO} && OCIRT_IN_GUEST=1 {REPO}/.venv/bin/python -m pytest -q -rs "
           f"-p no:cacheprovider tests/conformance/test_cgroups_systemd.py 2>&1")
    rc, out = guest.run_in_guest(cmd, timeout=2400, systemd=True)
    print(out)
    assert rc == 0, f"systemd tests failed in the guest (rc {rc}):\n{out[-6000:]}"
    assert " passed" in out, out[-3000:]
    assert "need_systemd" not in out and "systemd is not PID 1" not in out, \
        f"tests were skipped in the guest:\n{out[-3000:]}"


@pytest.mark.skipif(SYSTEMD, reason="systemd runs here")
def test_without_systemd_fails_clearly(ocirt):
    cid = ocirt.new_id()
    b = ocirt.bundle()
    b.linux["cgroupsPath"] = f"system.slice:ocirt-test:{cid}"
    b.write()
    line = assert_error(ocirt.create(cid, b, global_flags=FLAG), "--systemd-cgroup",
                        "systemd is not running")
    assert f"ocirt-test-{cid}.scope" in line
    assert not os.path.exists(os.path.join(ocirt.root, cid))


# --- with systemd -------------------------------------------------------------------

def unit_props(unit, *names):
    r = subprocess.run(["systemctl", "show", unit, *[f"--property={n}" for n in names]],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    return dict(ln.split("=", 1) for ln in r.stdout.splitlines() if "=" in ln)


def gone(unit):
    return unit_props(unit, "LoadState")["LoadState"] == "not-found"


def mk(ocirt, args, resources=None, path=None):
    cid = ocirt.new_id()
    b = ocirt.bundle(args)
    b.linux["cgroupsPath"] = path if path is not None else f"system.slice:ocirt-test:{cid}"
    if resources is not None:
        b.linux["resources"] = resources
    b.write()
    return cid, b, f"ocirt-test-{cid}.scope"


def read(path):
    with open(path) as f:
        return f.read().strip()


@need_systemd
def test_features_say_systemd(ocirt):
    f = json.loads(ocirt("features").ok().stdout)
    assert f["linux"]["cgroup"]["systemd"] is True


@need_systemd
def test_scope_limits_usage_until_delete(ocirt):
    script = "head -c 16m /dev/zero > /dev/shm/f; rm /dev/shm/f; exec sleep 600"
    cid, b, unit = mk(ocirt, ["sh", "-c", script],
                      {"memory": {"limit": 64 << 20}, "pids": {"limit": 32}})
    ocirt.create(cid, b, global_flags=FLAG).ok()
    p = unit_props(unit, "LoadState", "ActiveState", "Delegate", "Slice", "ControlGroup")
    assert p["LoadState"] == "loaded" and p["ActiveState"] == "active", p
    assert p["Delegate"] == "yes" and p["Slice"] == "system.slice", p
    cg = p["ControlGroup"]
    assert cg == f"/system.slice/{unit}", p
    # the unit is on the bus too
    r = subprocess.run(["busctl", "--system", "call", "org.freedesktop.systemd1",
                        "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                        "GetUnit", "s", unit], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("o "), r
    # init is in the container's leaf of the scope, with the limits
    pid = ocirt.state(cid)["pid"]
    assert read(f"/proc/{pid}/cgroup") == f"0::{cg}/container"
    leaf = f"{CGROOT}{cg}/container"
    assert read(f"{leaf}/memory.max") == str(64 << 20)
    assert read(f"{leaf}/pids.max") == "32"
    # the scope's own cgroup holds no process (no-internal-process rule): the keeper
    # is in a leaf of its own
    assert read(f"{CGROOT}{cg}/cgroup.procs") == ""
    assert len(read(f"{CGROOT}{cg}/keeper/cgroup.procs").split()) == 1
    ocirt.start(cid).ok()
    wait_for(lambda: read(f"/proc/{pid}/cmdline").startswith("sleep"), timeout=60,
             what="the container to exec sleep")
    ocirt.kill(cid, "KILL").ok()
    ocirt.wait_status(cid, "stopped", timeout=60)
    # the process is gone, the unit and its cgroup are not: the final usage is there
    assert unit_props(unit, "ActiveState")["ActiveState"] == "active"
    u = ocirt.state(cid)["x-ocirt-usage"]
    assert u["memory"]["peak_bytes"] >= 16 << 20, u
    assert u["memory"]["limit_bytes"] == 64 << 20, u
    assert u["cpu"]["total_ns"] > 0, u
    ev = json.loads(ocirt("events", "--stats", cid).ok().stdout)
    assert ev["data"]["cpu"]["usage"]["total"] == u["cpu"]["total_ns"]
    assert ev["data"]["pids"].get("current", 0) == 0  # runc omits a zero
    # delete (no flag needed: the state knows) stops the unit, and its cgroup goes
    ocirt.delete(cid).ok()
    assert gone(unit)
    assert not os.path.exists(f"{CGROOT}{cg}")


@need_systemd
def test_run_in_the_foreground(ocirt):
    cid, b, unit = mk(ocirt, ["sh", "-c", "exit 5"])
    assert ocirt.run(cid, b, global_flags=FLAG, timeout=120).returncode == 5
    assert gone(unit)
    assert not os.path.exists(f"{CGROOT}/system.slice/{unit}")


@need_systemd
def test_default_and_empty_slice(ocirt):
    """No cgroupsPath: system.slice, ocirt-<id>.scope; an empty slice: system.slice."""
    cid, b, unit = mk(ocirt, ["true"])
    b.linux["cgroupsPath"] = f":ocirt-test:{cid}"
    b.write()
    ocirt.create(cid, b, global_flags=FLAG).ok()
    assert unit_props(unit, "Slice")["Slice"] == "system.slice"
    ocirt.delete(cid, global_flags=FLAG).ok()
    assert gone(unit)
    cid2 = ocirt.new_id()
    b.linux.pop("cgroupsPath")
    b.write()
    ocirt.create(cid2, b, global_flags=FLAG).ok()
    p = unit_props(f"ocirt-{cid2}.scope", "ActiveState", "Slice")
    assert p == {"ActiveState": "active", "Slice": "system.slice"}, p
    ocirt.delete(cid2).ok()
    assert gone(f"ocirt-{cid2}.scope")


def _no_units(ocirt):
    r = subprocess.run(["systemctl", "list-units", "--all", "--plain", "--no-legend",
                        f"*{ocirt.marker}*"], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "", f"units left: {r.stdout}"


@need_systemd
@pytest.mark.parametrize("path", ["notaslice:ocirt-test:{cid}",
                                  "system--x.slice:ocirt-test:{cid}",
                                  "system.slice:ocirt-test", "system.slice:ocirt/x:{cid}"])
def test_bad_path_leaves_nothing(ocirt, path):
    cid, b, _ = mk(ocirt, ["true"], path=path.format(cid="X"))
    b.linux["cgroupsPath"] = path.format(cid=cid)
    b.write()
    assert_error(ocirt.create(cid, b, global_flags=FLAG), "linux.cgroupsPath")
    assert not os.path.exists(os.path.join(ocirt.root, cid))
    _no_units(ocirt)


@need_systemd
def test_refused_resource_leaves_no_unit(ocirt):
    cid, b, unit = mk(ocirt, ["true"], {"memory": {"swappiness": 10}})
    assert_error(ocirt.create(cid, b, global_flags=FLAG), "linux.resources.memory.swappiness")
    assert gone(unit)
    assert not os.path.exists(f"{CGROOT}/system.slice/{unit}")
    assert not os.path.exists(os.path.join(ocirt.root, cid))


@need_systemd
def test_failed_init_leaves_no_unit(ocirt):
    cid, b, unit = mk(ocirt, ["true"])
    b.config["mounts"].append({"destination": "/mnt", "type": "bind",
                               "source": "/nonexistent-ocirt-test", "options": ["bind"]})
    b.write()
    assert_error(ocirt.create(cid, b, global_flags=FLAG), "mounts[")
    assert gone(unit)
    assert not os.path.exists(f"{CGROOT}/system.slice/{unit}")


@need_systemd
def test_existing_unit_is_refused_and_left_alone(ocirt):
    cid, b, unit = mk(ocirt, ["sleep", "600"])
    ocirt.create(cid, b, global_flags=FLAG).ok()
    cid2 = ocirt.new_id()
    line = assert_error(ocirt.create(cid2, b, global_flags=FLAG), "linux.cgroupsPath")
    assert "already exists" in line
    assert not os.path.exists(os.path.join(ocirt.root, cid2))
    # the other container's unit and cgroup are untouched
    assert unit_props(unit, "ActiveState")["ActiveState"] == "active"
    assert ocirt.status(cid) == "created"
    ocirt.delete(cid, "--force").ok()
    assert gone(unit)


@need_systemd
def test_private_socket_without_the_bus(ocirt):
    """No system bus: systemd's own socket /run/systemd/private (root)."""
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/bus"}
    cid, b, unit = mk(ocirt, ["true"], {"pids": {"limit": 10}})
    ocirt.create(cid, b, global_flags=FLAG, env=env).ok()
    p = unit_props(unit, "ActiveState", "ControlGroup")
    assert p["ActiveState"] == "active"
    assert read(f"{CGROOT}{p['ControlGroup']}/container/pids.max") == "10"
    ocirt.delete(cid, env=env).ok()
    assert gone(unit)


@need_systemd
def test_rootless_through_the_user_manager():
    """Non-root: the user's systemd manager (user@UID.service) makes the scope in its
    delegated subtree; the moves that cross cgroups the user does not own are
    systemd's (PIDs=, AttachProcessesToUnit)."""
    from rootless_user import RootlessOcirt, RootlessUser
    try:
        user = RootlessUser.create()
    except (RuntimeError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot make an unprivileged test user: {e}")
    units = [f"user@{user.uid}.service", f"user-runtime-dir@{user.uid}.service"]
    try:
        why = user.check_launcher()
        if why:
            pytest.skip(why)
        r = subprocess.run(["systemctl", "start", units[0]], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r
        o = RootlessOcirt(user)
        try:
            cid = o.new_id()
            b = o.bundle(["sleep", "600"])
            b.linux["cgroupsPath"] = f"app.slice:ocirt-test:{cid}"
            b.linux["resources"] = {"pids": {"limit": 20}, "memory": {"limit": 64 << 20}}
            b.write()
            o.create(cid, b, global_flags=FLAG).ok()
            pid = o.state(cid)["pid"]
            scope = (f"/user.slice/user-{user.uid}.slice/user@{user.uid}.service/app.slice/"
                     f"ocirt-test-{cid}.scope")
            assert read(f"/proc/{pid}/cgroup") == f"0::{scope}/container"
            assert read(f"{CGROOT}{scope}/container/pids.max") == "20"
            assert read(f"{CGROOT}{scope}/container/memory.max") == str(64 << 20)
            assert len(read(f"{CGROOT}{scope}/keeper/cgroup.procs").split()) == 1
            # exec's process joins the container's leaf (through systemd too)
            o.start(cid).ok()
            r = o("exec", cid, "cat", "/proc/self/cgroup", timeout=120).ok()
            assert r.stdout.strip() in ("0::/", f"0::{scope}/container"), r
            o.delete(cid, "--force").ok()
            wait_for(lambda: not os.path.exists(f"{CGROOT}{scope}"), timeout=30,
                     what="the scope's cgroup to go")
            left = o.leftovers()
        finally:
            o.cleanup()
        assert not left, "the test left behind:\n  " + "\n  ".join(left)
    finally:
        subprocess.run(["systemctl", "stop", *units], capture_output=True, timeout=300)
        user.close()
