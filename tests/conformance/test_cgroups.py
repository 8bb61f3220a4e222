"""cgroups through the real CLI: limits read back and enforced, strict refusals,
pause/resume, update, events, usage that outlives the container, delete.

These run on whatever driver the host has (this machine: cgroup v1, hybrid); the
v2-only checks are in test_cgroups_v2.py, run inside the qemu guest by
test_cgroups_v2_guest.py. Every test cgroup lives under /ocirt-test-<marker>/.
"""
import json
import os
import signal
import time

import pytest

from helpers import assert_error, base_config, pid_alive, wait_for


def _mode():
    kinds = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            right = line.partition(" - ")[2].split()
            if right and right[0] in ("cgroup", "cgroup2"):
                kinds.add(right[0])
    return "v1" if "cgroup" in kinds else "v2"


MODE = _mode()
V1 = MODE == "v1"
ROOT = "/sys/fs/cgroup"

# (v1 controller, v1 file) / v2 file for the same figure
FILES = {
    "memory.limit": (("memory", "memory.limit_in_bytes"), "memory.max"),
    "memory.reservation": (("memory", "memory.soft_limit_in_bytes"), "memory.low"),
    "pids.limit": (("pids", "pids.max"), "pids.max"),
    "cpu.shares": (("cpu", "cpu.shares"), "cpu.weight"),
    "cpu.cpus": (("cpuset", "cpuset.cpus"), "cpuset.cpus"),
    "cpu.mems": (("cpuset", "cpuset.mems"), "cpuset.mems"),
    "cpu.idle": (("cpu", "cpu.idle"), "cpu.idle"),
    "cpu.burst": (("cpu", "cpu.cfs_burst_us"), "cpu.max.burst"),
}


def cg_path(ocirt, cid):
    return f"/ocirt-test-{ocirt.marker}/{cid}"


def cg_dir(ocirt, cid, ctrl="memory"):
    if V1:
        return f"{ROOT}/{ctrl}{cg_path(ocirt, cid)}"
    return f"{ROOT}{cg_path(ocirt, cid)}"


def cg_read(ocirt, cid, key=None, ctrl=None, name=None):
    if key:
        (ctrl, name), v2name = FILES[key]
        if not V1:
            name = v2name
    with open(os.path.join(cg_dir(ocirt, cid, ctrl), name)) as f:
        return f.read().strip()


def mk(ocirt, args, resources=None, cid=None, writable=False):
    """A bundle whose container lives at /ocirt-test-<marker>/<cid>."""
    cid = cid or ocirt.new_id()
    b = ocirt.bundle(args)
    b.config["linux"]["cgroupsPath"] = cg_path(ocirt, cid)
    if not any(m.get("type") == "cgroup" for m in b.config["mounts"]):
        b.config["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup",
                                   "source": "cgroup",
                                   "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    if resources is not None:
        b.config["linux"]["resources"] = resources
    if writable:
        b.config["root"]["readonly"] = False
    b.write()
    return cid, b


@pytest.fixture(autouse=True)
def _parent_cleanup(ocirt):
    yield
    # /ocirt-test-<marker> is made by the first container; remove it if it's empty.
    for d in (f"{ROOT}/{c}/ocirt-test-{ocirt.marker}" for c in os.listdir(ROOT)) if V1 \
            else [f"{ROOT}/ocirt-test-{ocirt.marker}"]:
        try:
            os.rmdir(d)
        except OSError:
            pass


def run_ok(ocirt, args, resources=None, *flags):
    cid, b = mk(ocirt, args, resources)
    r = ocirt.run(cid, b, *flags)
    return cid, r


# --- placement -------------------------------------------------------------------

def test_default_path_and_full_removal(ocirt):
    b = ocirt.bundle(["sleep", "600"])
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    pid = ocirt.state(cid)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if V1 and ctrls == "":
            continue
        assert path == f"/ocirt/{cid}", line
    if V1:
        for h in ("memory", "cpu", "pids", "freezer", "devices", "systemd"):
            assert os.path.isdir(f"{ROOT}/{h}/ocirt/{cid}")
        assert os.path.isdir(f"{ROOT}/unified/ocirt/{cid}"), "hybrid: the v2 dir too"
    ocirt.delete(cid, "--force").ok()
    for line in lines:
        pass
    if V1:
        for h in os.listdir(ROOT):
            assert not os.path.exists(f"{ROOT}/{h}/ocirt/{cid}")
    else:
        assert not os.path.exists(f"{ROOT}/ocirt/{cid}")


def test_relative_path_is_under_the_callers_cgroup(ocirt):
    cid = ocirt.new_id()
    b = ocirt.bundle(["sleep", "600"])
    rel = f"ocirt-test-{ocirt.marker}/{cid}"
    b.config["linux"]["cgroupsPath"] = rel
    b.write()
    ocirt.create(cid, b).ok()
    pid = ocirt.state(cid)["pid"]
    # ocirt runs as our child: its cgroup is ours
    with open("/proc/self/cgroup") as f:
        mine = {ln.split(":", 2)[1]: ln.split(":", 2)[2] for ln in f.read().splitlines()}
    with open(f"/proc/{pid}/cgroup") as f:
        theirs = {ln.split(":", 2)[1]: ln.split(":", 2)[2] for ln in f.read().splitlines()}
    for key, path in theirs.items():
        if V1 and key == "":
            continue
        assert path == os.path.join(mine[key], rel), (key, path)
    ocirt.delete(cid, "--force").ok()
    for key, path in theirs.items():
        if key == "memory":
            assert not os.path.exists(f"{ROOT}/memory{path}")
    for key, path in mine.items():
        if key == "memory":
            try:
                os.rmdir(f"{ROOT}/memory{os.path.join(path, f'ocirt-test-{ocirt.marker}')}")
            except OSError:
                pass
    if V1:
        for h in os.listdir(ROOT):
            key = {"systemd": "name=systemd", "unified": ""}.get(h, h)
            if key in mine:
                try:
                    os.rmdir(f"{ROOT}/{h}{os.path.join(mine[key], f'ocirt-test-{ocirt.marker}')}")
                except OSError:
                    pass


def test_delete_never_removes_a_cgroup_it_did_not_create(ocirt):
    cid = ocirt.new_id()
    b = ocirt.bundle(["sleep", "600"])
    parent = f"/ocirt-test-{ocirt.marker}/pre"
    b.config["linux"]["cgroupsPath"] = f"{parent}/{cid}"
    b.write()
    pre = [f"{ROOT}/{h}{parent}" for h in (os.listdir(ROOT) if V1 else [""])
           if os.path.ismount(f"{ROOT}/{h}") or not V1]
    for d in pre:
        os.makedirs(d)
    try:
        ocirt.create(cid, b).ok()
        ocirt.delete(cid, "--force").ok()
        for d in pre:
            assert os.path.isdir(d), f"{d} existed before the container and must stay"
            assert not os.path.exists(os.path.join(d, cid))
    finally:
        for d in pre:
            os.rmdir(d)


@pytest.mark.parametrize("other", ["stopped", "running"])
def test_delete_leaves_a_parent_it_made_to_the_containers_still_in_it(ocirt, other):
    # the first container makes /ocirt-test-<marker>; the second's cgroup sits in it
    # and, stopped, still holds its final usage: deleting the first must not touch it
    first, bf = mk(ocirt, ["true"])
    second, bs = mk(ocirt, ["true"] if other == "stopped" else ["sleep", "600"])
    ocirt.create(first, bf).ok()
    ocirt.create(second, bs).ok()
    ocirt.start(second).ok()
    if other == "stopped":
        ocirt.wait_status(second, "stopped")
    for verb_env in ({}, {"OCIRT_FRONT": "0"}):  # the C front, then Python
        d = cg_dir(ocirt, second)
        ocirt.delete(first, "--force", env=verb_env).ok()
        assert os.path.isdir(d), f"deleting {first} removed {second}'s cgroup {d}"
        assert os.path.isdir(os.path.dirname(d)), "the parent still holds a container"
        ev = json.loads(ocirt("events", "--stats", second).ok().stdout)
        assert ev["data"]["memory"]["usage"]["max"] > 0
        first, bf = mk(ocirt, ["true"])
        ocirt.create(first, bf).ok()
        ocirt.start(first).ok()
        ocirt.wait_status(first, "stopped")
    ocirt.delete(first).ok()
    ocirt.delete(second, "--force").ok()


def test_kill_all_reaches_every_process(ocirt):
    cid, b = mk(ocirt, ["sh", "-c", "sleep 600 & sleep 600 & sleep 600 & wait"])
    b.config["process"]["args"] = ["sh", "-c",
                                   "trap '' TERM; sleep 600 & sleep 600 & wait; wait"]
    b.write()
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    d = cg_dir(ocirt, cid, "pids")
    wait_for(lambda: len(open(f"{d}/cgroup.procs").read().split()) >= 3, what="3 processes")
    ocirt("kill", "--all", cid, "KILL").ok()
    wait_for(lambda: not open(f"{d}/cgroup.procs").read().split(), what="empty cgroup")
    ocirt.delete(cid).ok()


@pytest.mark.parametrize("init_gone", [False, True])
def test_kill_without_a_pid_namespace_kills_the_whole_cgroup(ocirt, init_gone):
    """No pid namespace of its own: init's death takes no process with it, so `kill
    KILL` reaches every process of the cgroup (as runc's), through the C front too,
    and still when init is already gone (the container is then stopped)."""
    cid, b = mk(ocirt, ["sleep", "600"])
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"]
                                       if n["type"] != "pid"]
    b.write()
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    for _ in range(3):
        ocirt("exec", "-d", cid, "sleep", "600").ok()
    d = cg_dir(ocirt, cid, "pids")
    procs = lambda: open(f"{d}/cgroup.procs").read().split()  # noqa: E731
    wait_for(lambda: len(procs()) == 4, what="4 processes")
    if init_gone:
        os.kill(ocirt.state(cid)["pid"], signal.SIGKILL)
        ocirt.wait_status(cid, "stopped")
    ocirt("kill", cid, "KILL").ok()
    wait_for(lambda: not procs(), what="empty cgroup")
    assert ocirt.status(cid) == "stopped"
    ocirt.delete(cid).ok()


def test_kill_signal_0_and_kill_all_of_a_stopped_container(ocirt):
    """Signal 0 checks that init is there; on a stopped container it fails with
    "container not running", while --all succeeds (runc's rules)."""
    cid, b = mk(ocirt, ["sleep", "600"])
    ocirt.create(cid, b).ok()
    ocirt("kill", cid, "0").ok()
    ocirt("kill", cid, "KILL").ok()
    ocirt.wait_status(cid, "stopped")
    assert_error(ocirt("kill", cid, "0"), "container not running")
    ocirt("kill", "--all", cid, "0").ok()
    ocirt.delete(cid).ok()


def test_kill_all_with_another_signal_reaches_every_process_and_thaws(ocirt):
    # init handles TERM (a handler, not an ignore, which its children would inherit);
    # its two sleeps die, init lives on, and the cgroup frozen during the signalling
    # is thawed again
    cid, b = mk(ocirt, ["sh", "-c", "trap 'true' TERM; sleep 600 & sleep 600 & "
                        "while :; do sleep 1; done"])
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    d = cg_dir(ocirt, cid, "pids")

    def sleeps():
        out = []
        for p in open(f"{d}/cgroup.procs").read().split():
            try:
                if open(f"/proc/{p}/cmdline").read() == "sleep\x00600\x00":
                    out.append(p)
            except OSError:
                pass
        return out
    wait_for(lambda: len(sleeps()) == 2, what="the two sleeps")
    pids = sleeps()
    ocirt("kill", "--all", cid, "TERM").ok()
    wait_for(lambda: not any(pid_alive(int(p)) for p in pids), what="the sleeps to die")
    assert ocirt.status(cid) == "running"
    ocirt.delete(cid, "--force").ok()


# --- limits read back --------------------------------------------------------------

def test_memory_pids_cpu_limits_are_applied(ocirt):
    res = {"memory": {"limit": 64 << 20, "reservation": 32 << 20},
           "pids": {"limit": 42},
           "cpu": {"shares": 512, "quota": 25000, "period": 50000, "cpus": "0",
                   "mems": "0", "idle": 0, "burst": 1000}}
    if V1:
        res["memory"].update({"swap": 128 << 20, "swappiness": 10, "kernelTCP": 16 << 20,
                              "disableOOMKiller": False, "useHierarchy": True})
    cid, b = mk(ocirt, ["sleep", "600"], res)
    ocirt.create(cid, b).ok()
    assert cg_read(ocirt, cid, "memory.limit") == str(64 << 20)
    assert cg_read(ocirt, cid, "memory.reservation") == str(32 << 20)
    assert cg_read(ocirt, cid, "pids.limit") == "42"
    assert cg_read(ocirt, cid, "cpu.shares") == ("512" if V1 else "20")
    assert cg_read(ocirt, cid, "cpu.cpus") == "0"
    assert cg_read(ocirt, cid, "cpu.mems") == "0"
    assert cg_read(ocirt, cid, "cpu.idle") == "0"
    assert cg_read(ocirt, cid, "cpu.burst") == "1000"
    if V1:
        assert cg_read(ocirt, cid, ctrl="cpu", name="cpu.cfs_quota_us") == "25000"
        assert cg_read(ocirt, cid, ctrl="cpu", name="cpu.cfs_period_us") == "50000"
        assert cg_read(ocirt, cid, ctrl="memory", name="memory.memsw.limit_in_bytes") == \
            str(128 << 20)
        assert cg_read(ocirt, cid, ctrl="memory", name="memory.swappiness") == "10"
        assert int(cg_read(ocirt, cid, ctrl="memory", name="memory.kmem.tcp.limit_in_bytes")) \
            == 16 << 20
    else:
        assert cg_read(ocirt, cid, ctrl="", name="cpu.max") == "25000 50000"
    ocirt.delete(cid, "--force").ok()


@pytest.mark.skipif(not V1, reason="v1 file names")
def test_v1_disable_oom_killer_and_blkio(ocirt):
    res = {"memory": {"disableOOMKiller": True},
           "blockIO": {"weight": 300,
                       "throttleReadBpsDevice": [{"major": 1, "minor": 3, "rate": 1 << 20}],
                       "throttleWriteIOPSDevice": [{"major": 1, "minor": 3, "rate": 100}]}}
    dev = _a_block_device()
    if dev:
        res["blockIO"]["throttleReadBpsDevice"] = [{"major": dev[0], "minor": dev[1],
                                                    "rate": 1 << 20}]
        res["blockIO"]["throttleWriteIOPSDevice"] = [{"major": dev[0], "minor": dev[1],
                                                      "rate": 100}]
    cid, b = mk(ocirt, ["sleep", "600"], res)
    r = ocirt.create(cid, b)
    if not dev:
        pytest.skip("no block device on this host to throttle")
    r.ok()
    assert "oom_kill_disable 1" in cg_read(ocirt, cid, ctrl="memory", name="memory.oom_control")
    d = cg_dir(ocirt, cid, "blkio")
    wname = "blkio.bfq.weight" if os.path.exists(f"{d}/blkio.bfq.weight") else "blkio.weight"
    assert cg_read(ocirt, cid, ctrl="blkio", name=wname).split()[-1] == "300"
    assert cg_read(ocirt, cid, ctrl="blkio", name="blkio.throttle.read_bps_device") == \
        f"{dev[0]}:{dev[1]} {1 << 20}"
    assert cg_read(ocirt, cid, ctrl="blkio", name="blkio.throttle.write_iops_device") == \
        f"{dev[0]}:{dev[1]} 100"
    ocirt.delete(cid, "--force").ok()


def _a_block_device():
    try:
        with open("/proc/partitions") as f:
            for line in f.read().splitlines()[2:]:
                mj, mn, _, name = line.split()
                if not name.startswith(("loop", "ram", "zram")):
                    return int(mj), int(mn)
    except OSError:
        pass
    return None


def test_cgroup_mount_shows_the_containers_own_cgroup(ocirt):
    name = "memory/memory.limit_in_bytes" if V1 else "memory.max"
    for with_ns in (True, False):
        cid, b = mk(ocirt, ["sh", "-c", f"cat /sys/fs/cgroup/{name}; "
                            "touch /sys/fs/cgroup/x 2>/dev/null && echo writable || echo ro; "
                            "cat /proc/self/cgroup"],
                    {"memory": {"limit": 48 << 20}})
        b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"]
                                           if n["type"] != "cgroup"]
        if with_ns:
            b.config["linux"]["namespaces"].append({"type": "cgroup"})
        b.write()
        r = ocirt.run(cid, b).ok()
        lines = r.stdout.splitlines()
        assert lines[0] == str(48 << 20), (with_ns, r)
        assert lines[1] == "ro"
        if with_ns:
            assert all(ln.endswith(":/") for ln in lines[2:]), "cgroupns: the container's is /"


# --- enforcement ---------------------------------------------------------------

def test_memory_limit_oom_kill_is_reported(ocirt, tmp_path):
    usage = tmp_path / "usage.json"
    res = {"memory": {"limit": 32 << 20}}
    if V1:
        res["memory"]["swap"] = 32 << 20
    cid, b = mk(ocirt, ["sh", "-c", "exec tail /dev/zero"], res)
    r = ocirt.run(cid, b, "--usage-file", str(usage))
    assert r.returncode == 137, r
    rep = json.loads(usage.read_text())
    assert rep["id"] == cid and rep["exit_status"] == 137 and rep["signal"] == 9
    assert rep["oom_killed"] is True and rep["oom_kills"] >= 1
    assert rep["memory"]["peak_bytes"] >= 24 << 20
    assert rep["memory"]["peak_bytes"] <= 33 << 20
    assert rep["memory"]["limit_bytes"] == 32 << 20


def test_pids_limit_stops_forks(ocirt):
    cid, r = run_ok(ocirt, ["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; "
                            "echo spawned; kill $(jobs -p) 2>/dev/null; true"],
                    {"pids": {"limit": 4}})
    assert "can't fork" in r.stderr or "Resource temporarily unavailable" in r.stderr \
        or "fork" in r.stderr, r


def test_cpu_quota_is_enforced(ocirt):
    # the quota is set by update between create and start, so the runtime's own init
    # work is not throttled (slow under emulation), only the container's process
    cid, b = mk(ocirt, ["sh", "-c", "timeout -s KILL 2 sh -c 'while :; do :; done'; true"])
    ocirt.create(cid, b).ok()
    ocirt("update", "--cpu-quota", "10000", "--cpu-period", "100000", cid).ok()
    # live figures come from events --stats (state adds x-ocirt-usage once stopped)
    before = json.loads(ocirt("events", "--stats", cid).ok().stdout)["data"]["cpu"][
        "usage"]["total"]
    t = time.monotonic()
    ocirt.start(cid).ok()
    ocirt.wait_status(cid, "stopped", timeout=120)
    wall = time.monotonic() - t
    used = ocirt.state(cid)["x-ocirt-usage"]["cpu"]["total_ns"] - before
    assert wall >= 1.9
    # 10% of the wall time, plus slack for a period; unthrottled, ~2 s
    assert used < (0.1 * wall + 0.25) * 1e9, f"10% quota: {used} ns in {wall:.2f}s"
    ocirt.delete(cid).ok()


def _devnode_bundle(ocirt, rules):
    """A container with /devtest/x = c 240:7 (a local-use major with no driver): opening it
    gives ENXIO when the device cgroup lets it through, EPERM when the rules deny it."""
    cid, b = mk(ocirt, ["sh", "-c", "head -c1 /devtest/x; echo x > /dev/null && echo null-ok"],
                {"devices": rules})
    os.makedirs(os.path.join(b.rootfs, "devtest"))
    os.mknod(os.path.join(b.rootfs, "devtest", "x"), 0o600 | 0o020000, os.makedev(240, 7))
    return cid, b


def test_linux_devices_entry_follows_the_device_rules(ocirt):
    """runc's rule: a linux.devices entry is made in /dev but gets no allow rule of its
    own; under a deny-all list it cannot be opened (EPERM), and an allow rule opens it."""
    cid, b = mk(ocirt, ["sh", "-c", "head -c1 /dev/kmsg; echo x > /dev/null && echo null-ok"],
                {"devices": [{"allow": False, "access": "rwm"}]})
    b.config["linux"]["devices"] = [{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]
    for s in ("bounding", "effective", "permitted"):
        b.config["process"]["capabilities"][s].append("CAP_SYSLOG")
    b.write()
    r = ocirt.run(cid, b).ok()
    assert "Operation not permitted" in r.stderr and r.stdout.split() == ["null-ok"], r
    b.config["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"})
    b.write()
    r = ocirt.run(ocirt.new_id(), b).ok()
    assert "Operation not permitted" not in r.stderr, r


def test_device_rules_are_enforced(ocirt):
    cid, b = _devnode_bundle(ocirt, [{"allow": False, "access": "rwm"}])
    r = ocirt.run(cid, b).ok()
    assert "Operation not permitted" in r.stderr, r
    assert r.stdout.split() == ["null-ok"], "the runtime's own devices stay usable"
    cid, b = _devnode_bundle(ocirt, [{"allow": False, "access": "rwm"},
                                     {"allow": True, "type": "c", "major": 240, "minor": 7,
                                      "access": "r"}])
    r = ocirt.run(cid, b).ok()
    assert "No such device or address" in r.stderr, r
    cid, b = _devnode_bundle(ocirt, [{"allow": True, "access": "rwm"},
                                     {"allow": False, "type": "c", "major": 240,
                                      "access": "w"}])
    r = ocirt.run(cid, b).ok()
    assert "No such device or address" in r.stderr, "deny w leaves r open"
    b.sh("echo > /devtest/x").write()
    r = ocirt.run(ocirt.new_id(), b)
    assert "Operation not permitted" in r.stderr, r


# --- strict refusals -----------------------------------------------------------

def _refused(ocirt, res, *needles, cfg_edit=None, flags=()):
    cid, b = mk(ocirt, ["true"], res)
    if cfg_edit:
        cfg_edit(b.config)
        b.write()
    r = ocirt.create(cid, b, global_flags=flags) if flags else ocirt.create(cid, b)
    line = assert_error(r, *needles)
    assert not os.path.exists(cg_dir(ocirt, cid)), "nothing left behind"
    assert ocirt.state_dirs() == []
    return line


REFUSALS_BOTH = [
    ({"cpu": {"shares": 1}}, "linux.resources.cpu.shares"),
    ({"cpu": {"cpus": "999"}}, "linux.resources.cpu.cpus"),
    ({"memory": {"swappiness": 200}}, "linux.resources.memory.swappiness"),
    ({"memory": {"limit": 64 << 20, "swap": 32 << 20}}, "linux.resources.memory.swap"),
    ({"memory": {"frob": 1}}, "linux.resources.memory.frob"),
    ({"memory": {"kernel": 64 << 20}}, "linux.resources.memory.kernel"),
    ({"blockIO": {"leafWeight": 100}}, "linux.resources.blockIO.leafWeight"),
    ({"network": {"classID": 1048577}}, "linux.resources.network.classID"),
    ({"network": {"priorities": [{"name": "lo", "priority": 1}]}},
     "linux.resources.network.priorities"),
    ({"rdma": {"mlx5_1": {"hcaHandles": 3}}}, "linux.resources.rdma.mlx5_1"),
    ({"unified": {"memory.nonexistent": "1"}}, "linux.resources.unified.memory.nonexistent"),
    ({"devices": [{"allow": True, "type": "q"}]}, "linux.resources.devices[0].type"),
    ({"hugepageLimits": [{"pageSize": "7MB", "limit": 1}]},
     "linux.resources.hugepageLimits[0].pageSize"),
]
REFUSALS_V1 = [
    # a new cgroup's parent has no realtime budget to hand out: the kernel says EINVAL
    ({"cpu": {"realtimeRuntime": 1000}}, "linux.resources.cpu.realtimeRuntime"),
    ({"memory": {"useHierarchy": False}}, "linux.resources.memory.useHierarchy"),
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 2 << 20}]},
     "linux.resources.hugepageLimits[0]"),
]


@pytest.mark.parametrize("res,field", REFUSALS_BOTH + (REFUSALS_V1 if V1 else []),
                         ids=lambda x: x if isinstance(x, str) else "")
def test_limit_that_cannot_be_applied_fails_create(ocirt, res, field):
    line = _refused(ocirt, res, field)
    assert len(line) > len(field) + 10, "the reason is given"


def test_refusal_after_some_writes_leaves_nothing(ocirt):
    # memory and pids are applied first; cpu.cpus then fails: all of it is undone
    _refused(ocirt, {"memory": {"limit": 64 << 20}, "pids": {"limit": 10},
                     "cpu": {"cpus": "999"}}, "linux.resources.cpu.cpus")


def test_systemd_cgroup_without_systemd_is_a_clear_error(ocirt):
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs here: the clear-error path is not reachable")
    cid, b = mk(ocirt, ["true"])
    b.config["linux"]["cgroupsPath"] = "system.slice:ocirt:x"
    b.write()
    r = ocirt.create(cid, b, global_flags=("--systemd-cgroup",))
    assert_error(r, "systemd is not running")
    assert ocirt.state_dirs() == []


def test_bad_cgroups_path(ocirt):
    cid, b = mk(ocirt, ["true"])
    b.config["linux"]["cgroupsPath"] = "/../../etc"
    b.write()
    assert_error(ocirt.create(cid, b), "linux.cgroupsPath")


# --- pause / resume --------------------------------------------------------------

def test_pause_resume(ocirt):
    cid, b = mk(ocirt, ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; done"],
                writable=True)
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    pid = ocirt.state(cid)["pid"]
    n = f"/proc/{pid}/root/tmp/n"
    wait_for(lambda: os.path.exists(n) and open(n).read().strip(), what="progress")
    ocirt("pause", cid).ok()
    assert ocirt.status(cid) == "paused"
    a = open(n).read()
    time.sleep(0.4)
    assert open(n).read() == a, "a frozen container makes no progress"
    assert_error(ocirt("pause", cid), cid)
    ocirt("resume", cid).ok()
    assert ocirt.status(cid) == "running"
    wait_for(lambda: open(n).read() != a, what="progress after resume")
    assert_error(ocirt("resume", cid), "not paused")
    # a paused container: delete refuses, delete --force thaws and kills
    ocirt("pause", cid).ok()
    assert_error(ocirt.delete(cid), cid)
    ocirt.delete(cid, "--force").ok()
    assert not pid_alive(pid)


def test_pause_of_a_stopped_container_fails(ocirt):
    cid, b = mk(ocirt, ["true"])
    ocirt.run(cid, b, "--keep").ok()
    assert_error(ocirt("pause", cid), "not running")
    assert_error(ocirt("resume", cid), "not paused")
    ocirt.delete(cid).ok()


# --- update ----------------------------------------------------------------------

def test_update_flags_and_resources_file(ocirt, tmp_path):
    cid, b = mk(ocirt, ["sleep", "600"], {"memory": {"limit": 64 << 20},
                                          "pids": {"limit": 10}})
    ocirt.create(cid, b).ok()
    ocirt("update", "--memory", "96m", "--pids-limit", "20", "--cpu-shares", "256",
          "--cpuset-cpus", "0", cid).ok()
    assert cg_read(ocirt, cid, "memory.limit") == str(96 << 20)
    assert cg_read(ocirt, cid, "pids.limit") == "20"
    assert cg_read(ocirt, cid, "cpu.shares") == ("256" if V1 else "10")
    assert cg_read(ocirt, cid, "cpu.cpus") == "0"
    f = tmp_path / "r.json"
    f.write_text(json.dumps({"memory": {"limit": 80 << 20}, "pids": {"limit": 30}}))
    ocirt("update", "-r", str(f), cid).ok()
    assert cg_read(ocirt, cid, "memory.limit") == str(80 << 20)
    assert cg_read(ocirt, cid, "pids.limit") == "30"
    r = ocirt("update", "--resources", "-", cid,
              stdin=open(_write(tmp_path / "s.json", {"pids": {"limit": 31}})))
    r.ok()
    assert cg_read(ocirt, cid, "pids.limit") == "31"
    # refusals name the field and change nothing
    assert_error(ocirt("update", "--cpu-shares", "1", cid), "linux.resources.cpu.shares")
    assert_error(ocirt("update", "--memory", "lots", cid), "--memory")
    assert_error(ocirt("update", "--cpu-quota", "5", cid), "linux.resources.cpu.quota")
    ocirt.delete(cid, "--force").ok()


def test_update_in_runc_shapes(ocirt):
    """Flags after the id (runc's CLI takes them there), --cpu-idle, and --memory -1
    once a swap limit is set (the swap limit goes too, or the kernel refuses)."""
    cid, b = mk(ocirt, ["sleep", "600"], {"memory": {"limit": 64 << 20}})
    ocirt.create(cid, b).ok()
    ocirt("update", cid, "--pids-limit", "123").ok()
    assert cg_read(ocirt, cid, "pids.limit") == "123"
    if os.path.exists(os.path.join(cg_dir(ocirt, cid, "cpu"), "cpu.idle")):
        ocirt("update", cid, "--cpu-idle", "1").ok()
        assert cg_read(ocirt, cid, "cpu.idle") == "1"
        assert_error(ocirt("update", cid, "--cpu-idle", "2"), "linux.resources.cpu.idle")
    if V1 and os.path.exists(os.path.join(cg_dir(ocirt, cid), "memory.memsw.limit_in_bytes")):
        ocirt("update", cid, "--memory-swap", str(96 << 20)).ok()
        ocirt("update", cid, "--memory", "-1").ok()
        assert int(cg_read(ocirt, cid, "memory.limit")) > 1 << 60
    ocirt.delete(cid, "--force").ok()


def test_update_zeros_mean_unset(ocirt, tmp_path):
    """What Docker sends for `docker update --memory 64m --memory-swap 64m`: every
    field it does not set as 0. Zero cpu shares/quota/period, blkio weight and memory
    reservation change nothing (as with runc); the memory limit is applied."""
    cid, b = mk(ocirt, ["sleep", "600"], {"cpu": {"shares": 512}})
    ocirt.create(cid, b).ok()
    before = cg_read(ocirt, cid, "cpu.shares")
    doc = {"memory": {"limit": 64 << 20, "reservation": 0, "swap": 64 << 20, "kernel": 0,
                      "kernelTCP": 0},
           "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0,
                   "realtimePeriod": 0, "cpus": "", "mems": ""},
           "blockIO": {"weight": 0}}
    ocirt("update", "-r", _write(tmp_path / "d.json", doc), cid).ok()
    assert cg_read(ocirt, cid, "memory.limit") == str(64 << 20)
    assert cg_read(ocirt, cid, "cpu.shares") == before
    ocirt.delete(cid, "--force").ok()


@pytest.mark.parametrize("limit,want", [(0, "1"), (-1, "max"), (7, "7")])
def test_pids_limit_values(ocirt, limit, want):
    """-1 is unlimited; 0 is written as 1, as runc does (systemd has no TasksMax=0)."""
    cid, b = mk(ocirt, ["true"], {"pids": {"limit": limit}})
    ocirt.create(cid, b).ok()
    assert cg_read(ocirt, cid, "pids.limit") == want
    ocirt.delete(cid, "--force").ok()


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return str(path)


def test_update_check_before_update(ocirt):
    cid, b = mk(ocirt, ["sh", "-c", "head -c 20m /dev/zero > /dev/shm/x; sleep 600"])
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    key = "memory.usage_in_bytes" if V1 else "memory.current"
    wait_for(lambda: int(cg_read(ocirt, cid, ctrl="memory", name=key)) > 20 << 20,
             what="20 MiB charged")
    r = ocirt("update", "-r", "-", cid, stdin=open(_write_tmp(
        {"memory": {"limit": 8 << 20, "checkBeforeUpdate": True}})))
    assert_error(r, "linux.resources.memory.limit", "checkBeforeUpdate")
    ocirt.delete(cid, "--force").ok()


def _write_tmp(obj):
    import tempfile
    fd, p = tempfile.mkstemp(prefix="ocirt-test-res-")
    os.write(fd, json.dumps(obj).encode())
    os.close(fd)
    return p


def test_update_of_a_stopped_container_fails(ocirt):
    cid, b = mk(ocirt, ["true"])
    ocirt.run(cid, b, "--keep").ok()
    assert_error(ocirt("update", "--pids-limit", "5", cid), "not running")
    ocirt.delete(cid).ok()


# --- events and usage ----------------------------------------------------------

def test_events_stats_is_runc_json(ocirt):
    cid, b = mk(ocirt, ["sleep", "600"], {"pids": {"limit": 50},
                                          "memory": {"limit": 64 << 20}})
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    r = ocirt("events", "--stats", cid).ok()
    assert len(r.lines) == 1
    ev = json.loads(r.stdout)
    assert ev["type"] == "stats" and ev["id"] == cid
    d = ev["data"]
    for k in ("cpu", "memory", "pids", "blkio", "hugetlb"):
        assert k in d, k
    assert d["cpu"]["usage"]["total"] > 0
    assert "kernel" in d["cpu"]["usage"] and "user" in d["cpu"]["usage"]
    assert d["memory"]["usage"]["limit"] == 64 << 20
    assert d["memory"]["usage"]["usage"] > 0
    assert d["pids"] == {"current": 1, "limit": 50}
    ocirt.delete(cid, "--force").ok()


def test_events_interval_streams_and_reports_oom(ocirt):
    res = {"memory": {"limit": 24 << 20}}
    if V1:
        res["memory"]["swap"] = 24 << 20
    cid, b = mk(ocirt, ["sh", "-c", "until [ -e /tmp/go ]; do sleep 0.1; done; "
                        "tail /dev/zero; sleep 600"], res, writable=True)
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    pid = ocirt.state(cid)["pid"]
    import subprocess
    p = ocirt.spawn("events", "--interval", "500ms", cid, stdout=subprocess.PIPE)
    try:
        evs = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            evs.append(json.loads(line))
            if len(evs) == 1:  # events is watching: now make the container OOM
                open(f"/proc/{pid}/root/tmp/go", "w").close()
            if any(e["type"] == "oom" for e in evs) and len(evs) >= 3:
                break
    finally:
        p.kill()
        p.wait()
    types = [e["type"] for e in evs]
    assert types.count("stats") >= 2, types
    assert {"type": "oom", "id": cid} in evs, types
    ocirt.delete(cid, "--force").ok()


def test_final_usage_survives_the_process(ocirt, tmp_path):
    usage = tmp_path / "usage.json"
    script = ("timeout -s KILL 0.5 sh -c 'while :; do :; done'; "
              "head -c 30m /dev/zero > /dev/shm/big; rm /dev/shm/big; exit 3")
    cid, b = mk(ocirt, ["sh", "-c", script], {"memory": {"limit": 256 << 20}})
    r = ocirt.run(cid, b, "--keep", "--usage-file", str(usage))
    assert r.returncode == 3, r
    rep = json.loads(usage.read_text())
    assert rep["exit_status"] == 3 and rep["oom_killed"] is False and rep["oom_kills"] == 0
    assert rep["cpu"]["total_ns"] >= 0.3e9
    assert rep["cpu"]["user_ns"] is not None and rep["cpu"]["kernel_ns"] is not None
    assert rep["memory"]["peak_bytes"] >= 30 << 20
    # the stopped container still has its figures: state and events --stats
    st = ocirt.state(cid)
    assert st["status"] == "stopped"
    u = st["x-ocirt-usage"]
    assert u["cpu"]["total_ns"] == rep["cpu"]["total_ns"]
    assert u["memory"]["peak_bytes"] == rep["memory"]["peak_bytes"]
    ev = json.loads(ocirt("events", "--stats", cid).ok().stdout)
    assert ev["data"]["cpu"]["usage"]["total"] == rep["cpu"]["total_ns"]
    if V1:
        assert ev["data"]["memory"]["usage"]["max"] == rep["memory"]["peak_bytes"]
    ocirt.delete(cid).ok()
    assert not os.path.exists(cg_dir(ocirt, cid))
    assert_error(ocirt("events", "--stats", cid), "does not exist")


@pytest.mark.parametrize("verb", ["run", "create"])
def test_pre_existing_frozen_cgroup_is_refused(ocirt, verb):
    """A cgroup frozen before the container comes (v1 freezer.state FROZEN, v2
    cgroup.freeze 1): refused before any process joins it (it would freeze there,
    unkillable until thawed, and the verb would hang), within seconds, with runc's
    words; the frozen dir stays as it was and every dir ocirt made goes."""
    cid = ocirt.new_id()
    _, b = mk(ocirt, ["true"], cid=cid)
    fz = cg_dir(ocirt, cid, "freezer")
    os.makedirs(fz)
    try:
        with open(os.path.join(fz, "freezer.state" if V1 else "cgroup.freeze"), "w") as f:
            f.write("FROZEN" if V1 else "1")
        args = ["-d"] if verb == "run" else []
        t = time.monotonic()
        r = ocirt(verb, "--bundle", b.path, *args, cid, timeout=20)
        assert time.monotonic() - t < 10
        line = assert_error(r, "linux.cgroupsPath", "container's cgroup unexpectedly frozen")
        assert fz in line
        assert os.path.isdir(fz)
        if V1:
            assert not os.path.exists(cg_dir(ocirt, cid, "memory"))
        assert ocirt.state_dirs() == []
    finally:
        with open(os.path.join(fz, "freezer.state" if V1 else "cgroup.freeze"), "w") as f:
            f.write("THAWED" if V1 else "0")
        os.rmdir(fz)


@pytest.mark.parametrize("verb", ["run", "create"])
def test_memory_limit_too_small_for_init(ocirt, verb):
    """4 KiB: init is OOM-killed while it sets up. Said so, naming the limit (runc:
    "container init was OOM-killed (memory limit too low?)"); nothing left behind."""
    cid, b = mk(ocirt, ["true"], {"memory": {"limit": 4096}})
    line = assert_error(ocirt(verb, "--bundle", b.path, cid),
                        "linux.resources.memory.limit", "OOM-killed")
    assert "4096" in line
    assert ocirt.state_dirs() == []


def test_what_init_copies_is_charged_to_the_container(ocirt):
    """create forks init before it makes the cgroup, and init goes on meanwhile; but
    what it fills by the image's measure (a tmpcopyup tmpfs) comes only after it is
    in the container's cgroup: those pages count against the container, not the
    caller."""
    size = 24 << 20
    cid, b = mk(ocirt, ["sleep", "600"], {"memory": {"limit": 512 << 20}})
    # a deep new path: many mkdirs for create after the fork, while init goes on
    deep = "/".join(f"d{i}" for i in range(16))
    b.config["linux"]["cgroupsPath"] = f"{cg_path(ocirt, cid)}/{deep}"
    big = os.path.join(b.rootfs, "big")
    os.makedirs(big)
    with open(os.path.join(big, "blob"), "wb") as f:
        f.write(os.urandom(1 << 20) * (size >> 20))
    # first of the mounts: before any mount that needs the cgroup itself
    b.config["mounts"].insert(0, {"destination": "/big", "type": "tmpfs", "source": "tmpfs",
                                  "options": ["tmpcopyup"]})
    b.write()
    ocirt.create(cid, b).ok()
    try:
        with open(os.path.join(cg_dir(ocirt, cid), deep, "memory.usage_in_bytes" if V1
                               else "memory.current")) as f:
            used = int(f.read())
        assert used >= size, f"the container's cgroup holds {used} bytes, not the copy's {size}"
    finally:
        ocirt.delete(cid, "--force").ok()


def test_second_container_in_a_cgroup_in_use_is_refused(ocirt):
    """runc: "container's cgroup is not empty"; the first container is untouched."""
    cid, b = mk(ocirt, ["sleep", "600"])
    ocirt.create(cid, b).ok()
    b2 = ocirt.bundle(["true"])
    b2.config["linux"]["cgroupsPath"] = cg_path(ocirt, cid)
    b2.write()
    for verb in ("run", "create"):
        assert_error(ocirt(verb, "--bundle", b2.path, ocirt.new_id()), "linux.cgroupsPath",
                     "container's cgroup is not empty")
    assert ocirt.status(cid) == "created"
    ocirt.delete(cid, "--force").ok()


@pytest.mark.skipif(not V1, reason="cgroup v1 / hybrid host only (this host is pure v2)")
def test_unified_resources_on_a_v1_host_are_invalid(ocirt):
    """runc: "invalid configuration": a v2 file such as memory.min has no controller
    in a hybrid host's cgroup v2 hierarchy."""
    cid, b = mk(ocirt, ["true"], {"unified": {"memory.min": "131072"}})
    assert_error(ocirt.create(cid, b), "linux.resources.unified.memory.min",
                 "invalid configuration")
    assert ocirt.state_dirs() == []


def test_exec_into_a_sub_cgroup(ocirt):
    """exec --cgroup: the process joins a cgroup below the container's (v1: per
    controller, ctrl:path; v2: one path); outside it, missing, or an unknown
    controller are refused, each in one line."""
    cid, b = mk(ocirt, ["sleep", "600"])
    ocirt.create(cid, b).ok()
    ocirt.start(cid).ok()
    assert_error(ocirt("exec", "--cgroup", "..", cid, "true"), "bad sub cgroup path")
    assert_error(ocirt("exec", "--cgroup", "nonexistent", cid, "true"), "adding pid",
                 "No such file or directory")
    if V1:
        assert_error(ocirt("exec", "--cgroup", "whaaat:/", cid, "true"), "unknown controller")
        os.mkdir(os.path.join(cg_dir(ocirt, cid, "memory"), "submem"))
        r = ocirt("exec", "--cgroup", "memory:submem", cid, "cat", "/proc/self/cgroup").ok()
        assert f":memory:{cg_path(ocirt, cid)}/submem" in r.stdout
        assert f":pids:{cg_path(ocirt, cid)}\n" in r.stdout
        os.rmdir(os.path.join(cg_dir(ocirt, cid, "memory"), "submem"))
    else:
        os.mkdir(os.path.join(cg_dir(ocirt, cid), "sub"))
        r = ocirt("exec", "--cgroup", "sub", cid, "cat", "/proc/self/cgroup").ok()
        assert r.stdout.strip().endswith(f"{cg_path(ocirt, cid)}/sub")
        os.rmdir(os.path.join(cg_dir(ocirt, cid), "sub"))
    ocirt.delete(cid, "--force").ok()
