"""Unit tests of the cgroup drivers' pure parts: validation, conversions, device
rules and the eBPF program, path handling, systemd names, CLI value parsing; the
manager interface (restore from the record, placement by errno)."""
import os
import struct

import pytest

from ocirt.cgroups import base, devices, fs, systemd, v1, v2
from ocirt.cgroups import bpf
from ocirt.errors import ConfigError, OcirtError


# --- validation: every refusal names its field -------------------------------------

def _plan_v1(res, dirs=None):
    dirs = dirs if dirs is not None else {c: f"/x/{c}" for c in
                                          ("memory", "cpu", "cpuset", "pids", "blkio",
                                           "devices", "freezer", "cpuacct")}
    return v1.plan(dirs, res, "linux.resources")


def _plan_v2(res):
    return v2.plan("/x", res, "linux.resources")


@pytest.mark.parametrize("res,field", [
    ({"memory": {"limit": "1g"}}, "linux.resources.memory.limit"),
    ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness"),
    ({"memory": {"limit": 100 << 20, "swap": 50 << 20}}, "linux.resources.memory.swap"),
    ({"memory": {"bogus": 1}}, "linux.resources.memory.bogus"),
    ({"cpu": {"quota": 10}}, "linux.resources.cpu.quota"),
    ({"cpu": {"period": 10}}, "linux.resources.cpu.period"),
    ({"cpu": {"cpus": "0-x"}}, "linux.resources.cpu.cpus"),
    ({"cpu": {"idle": 2}}, "linux.resources.cpu.idle"),
    ({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight"),
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 8}]}},
     "linux.resources.blockIO.throttleReadBpsDevice[0]"),
    ({"hugepageLimits": [{"pageSize": "3XB", "limit": 1}]},
     "linux.resources.hugepageLimits[0].pageSize"),
    ({"devices": [{"allow": "yes"}]}, "linux.resources.devices[0].allow"),
    ({"devices": [{"allow": True, "type": "x"}]}, "linux.resources.devices[0].type"),
    ({"devices": [{"allow": True, "access": "rwx"}]}, "linux.resources.devices[0].access"),
    ({"frobnicate": {}}, "linux.resources.frobnicate"),
])
def test_invalid_values_name_the_field(res, field):
    for plan in (_plan_v1, _plan_v2):
        with pytest.raises(ConfigError) as e:
            plan(res)
        assert e.value.path == field, (plan, str(e.value))


@pytest.mark.parametrize("res,field", [
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}]},
     "linux.resources.hugepageLimits[0]"),
    ({"network": {"classID": 1}}, "linux.resources.network.classID"),
    ({"network": {"priorities": [{"name": "eth0", "priority": 1}]}},
     "linux.resources.network.priorities[0]"),
    ({"rdma": {"mlx5_1": {"hcaHandles": 3}}}, "linux.resources.rdma.mlx5_1"),
    ({"unified": {"memory.max": "1000"}}, "linux.resources.unified"),
    ({"memory": {"limit": 1 << 20}}, "linux.resources.memory"),
])
def test_v1_absent_controller_is_refused(res, field, monkeypatch):
    monkeypatch.setattr(base, "host_page_sizes", lambda: {2 << 20})
    with pytest.raises(ConfigError) as e:
        _plan_v1(res, dirs={"cpu": "/x/cpu"})
    assert e.value.path == field
    assert "not mounted" in e.value.message or "cgroup v2" in e.value.message


@pytest.mark.parametrize("res,field", [
    ({"memory": {"kernel": 1 << 20}}, "linux.resources.memory.kernel"),
    ({"memory": {"kernelTCP": 1 << 20}}, "linux.resources.memory.kernelTCP"),
    ({"memory": {"swappiness": 10}}, "linux.resources.memory.swappiness"),
    ({"memory": {"disableOOMKiller": True}}, "linux.resources.memory.disableOOMKiller"),
    ({"memory": {"useHierarchy": False}}, "linux.resources.memory.useHierarchy"),
    ({"cpu": {"realtimeRuntime": 1000}}, "linux.resources.cpu.realtimeRuntime"),
    ({"cpu": {"realtimePeriod": 1000}}, "linux.resources.cpu.realtimePeriod"),
    ({"blockIO": {"leafWeight": 100}}, "linux.resources.blockIO.leafWeight"),
    ({"network": {"classID": 1}}, "linux.resources.network.classID"),
    ({"memory": {"swap": 1 << 30}}, "linux.resources.memory.swap"),
    ({"memory": {"limit": -1, "swap": 1 << 30}}, "linux.resources.memory.swap"),
])
def test_v2_has_no_equivalent_refused(res, field):
    with pytest.raises(ConfigError) as e:
        _plan_v2(res)
    assert e.value.path == field


def test_v2_accepts_the_harmless_defaults():
    ops, req = _plan_v2({"memory": {"disableOOMKiller": False, "useHierarchy": True},
                         "cpu": {"shares": 1024}, "pids": {"limit": 5}})
    assert req == {"cpu": "linux.resources.cpu.shares", "pids": "linux.resources.pids.limit"}


def test_v2_conversions():
    assert v2.shares_to_weight(2) == 1
    assert v2.shares_to_weight(1024) == 39
    assert v2.shares_to_weight(262144) == 10000
    assert v2.blkio_to_io_weight(10) == 1
    assert v2.blkio_to_io_weight(500) == 4950
    assert v2.blkio_to_io_weight(1000) == 10000


def test_v2_writes(tmp_path):
    d = str(tmp_path)
    for name in ("memory.max", "memory.swap.max", "memory.low", "cpu.max", "cpu.weight",
                 "pids.max", "io.max", "hugetlb.2MB.max", "memory.high"):
        open(os.path.join(d, name), "w").close()
    ops, req = v2.plan(d, {
        "memory": {"limit": 100 << 20, "swap": 300 << 20, "reservation": 50 << 20},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
        "pids": {"limit": -1},
        "blockIO": {"throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
        "unified": {"memory.high": "90000000"},
    }, "linux.resources")
    for op in ops:
        op[0](*op[1:])

    def rd(n):
        return open(os.path.join(d, n)).read()
    assert rd("memory.max") == str(100 << 20)
    assert rd("memory.swap.max") == str(200 << 20)
    assert rd("memory.low") == str(50 << 20)
    assert rd("cpu.weight") == "39"
    assert rd("cpu.max") == "50000 100000"
    assert rd("pids.max") == "max"
    assert rd("io.max") == "8:0 wiops=100"
    assert rd("memory.high") == "90000000"
    assert set(req) == {"memory", "cpu", "pids", "io"}


def test_unified_keys_are_checked():
    for key in ("../x", "cgroup.procs", "a/b", ""):
        with pytest.raises(ConfigError) as e:
            _plan_v2({"unified": {key: "1"}})
        assert e.value.path.startswith("linux.resources.unified")


def test_cgroup_missing_file_names_field(tmp_path):
    with pytest.raises(ConfigError) as e:
        fs.write(str(tmp_path), "pids.max", 5, "linux.resources.pids.limit")
    assert e.value.path == "linux.resources.pids.limit"
    assert "no pids.max" in e.value.message


# --- device rules --------------------------------------------------------------

def test_device_rules_v1_text():
    rules = devices.parse([{"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "major": 10, "minor": 200,
                            "access": "rw"},
                           {"allow": True, "type": "b", "major": 8, "access": "mr"}])
    assert [r.v1() for r in rules] == ["a", "c 10:200 rw", "b 8:* rm"]
    assert [r.allow for r in rules] == [False, True, True]


def test_effective_rules_keep_the_runtime_devices():
    rules = devices.effective([{"allow": False, "access": "rwm"}],
                              [{"type": "c", "major": 10, "minor": 229}])
    assert devices.allows(rules, "c", 1, 3, "rw")       # /dev/null
    assert devices.allows(rules, "c", 136, 4, "rw")     # /dev/pts/4
    assert not devices.allows(rules, "c", 10, 229, "r")  # linux.devices: no rule (runc)
    assert devices.allows(rules, "b", 8, 0, "m")        # mknod anything
    assert not devices.allows(rules, "b", 8, 0, "r")
    assert not devices.allows(rules, "c", 1, 11, "r")   # /dev/kmsg


def test_allows_semantics():
    R = devices.Rule
    rules = [R(True, "a", None, None, "rwm"), R(False, "c", 1, 5, "w")]
    assert devices.allows(rules, "c", 1, 5, "r")
    assert not devices.allows(rules, "c", 1, 5, "rw"), "a deny rule matches any bit"
    assert devices.allows([], "b", 8, 0, "rwm"), "no rules: the kernel default (allow)"
    rules = [R(False, "a", None, None, "rwm"), R(True, "c", 1, None, "r")]
    assert devices.allows(rules, "c", 1, 9, "r")
    assert not devices.allows(rules, "c", 1, 9, "rw"), "an allow rule must cover every bit"


def _run_bpf(prog, typ, major, minor, acc):
    """A tiny interpreter for the opcodes program() emits, to check it computes
    devices.allows() (the kernel's verifier checks it in the conformance tests)."""
    regs = [0] * 11
    access = sum(bpf.ACC[c] for c in acc)
    ctx = [(access << 16) | (bpf.DEV_CHAR if typ == "c" else bpf.DEV_BLOCK), major, minor]
    insns = [struct.unpack_from("<BBhi", prog, i) for i in range(0, len(prog), 8)]
    pc = 0
    while True:
        code, regb, off, imm = insns[pc]
        dst, src = regb & 0xf, regb >> 4
        pc += 1
        u = imm & 0xffffffff
        if code == bpf._LDX_W:
            regs[dst] = ctx[off // 4]
        elif code == bpf._MOV32_X:
            regs[dst] = regs[src] & 0xffffffff
        elif code == bpf._AND32_K:
            regs[dst] = regs[dst] & u
        elif code == bpf._RSH32_K:
            regs[dst] = (regs[dst] & 0xffffffff) >> imm
        elif code == bpf._MOV64_K:
            regs[dst] = imm
        elif code == bpf._JNE32_K:
            if (regs[dst] & 0xffffffff) != u:
                pc += off
        elif code == bpf._JEQ32_K:
            if (regs[dst] & 0xffffffff) == u:
                pc += off
        elif code == bpf._EXIT:
            return bool(regs[0])
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


@pytest.mark.parametrize("cfg_rules", [
    [{"allow": False, "access": "rwm"}],
    [],
    [{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1,
                                        "minor": 5, "access": "w"}],
    [{"allow": False, "access": "rwm"}, {"allow": True, "type": "b", "major": 8,
                                         "access": "r"},
     {"allow": False, "type": "b", "major": 8, "minor": 1, "access": "r"}],
])
def test_bpf_program_matches_reference(cfg_rules):
    rules = devices.effective(cfg_rules)
    prog = bpf.program(rules)
    for typ in ("c", "b"):
        for major, minor in ((1, 3), (1, 5), (1, 11), (8, 0), (8, 1), (136, 2), (5, 2),
                             (4000000000, 1)):
            for acc in ("r", "w", "m", "rw", "rwm"):
                assert _run_bpf(prog, typ, major, minor, acc) == \
                    devices.allows(rules, typ, major, minor, acc), (typ, major, minor, acc)


# --- paths ---------------------------------------------------------------------

def test_clean_path():
    assert fs.clean_path("/a//b/./c/") == "/a/b/c"
    assert fs.clean_path("a/../b") == "/b"
    with pytest.raises(ConfigError) as e:
        fs.clean_path("/a/../../etc")
    assert e.value.path == "linux.cgroupsPath"


def test_under_mount():
    assert fs.under_mount("/sys/fs/cgroup/memory", "/", "/ocirt/x") == \
        "/sys/fs/cgroup/memory/ocirt/x"
    assert fs.under_mount("/sys/fs/cgroup", "/docker/abc", "/docker/abc/ocirt/x") == \
        "/sys/fs/cgroup/ocirt/x"
    with pytest.raises(OcirtError):
        fs.under_mount("/sys/fs/cgroup", "/docker/abc", "/other")


def test_mountinfo_parsing(tmp_path):
    p = tmp_path / "mountinfo"
    p.write_text(
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n")
    ms = fs.cgroup_mounts(str(p))
    assert ms[0] == ("cgroup", "/sys/fs/cgroup/cpu,cpuacct", "/", "rw,cpu,cpuacct")
    assert ms[2][0] == "cgroup2"


# --- systemd ---------------------------------------------------------------------

def test_systemd_names():
    assert systemd.parse("system.slice:docker:abc", "x") == ("system.slice", "docker-abc.scope")
    assert systemd.parse(None, "id1") == ("system.slice", "ocirt-id1.scope")
    assert systemd.parse(":ocirt:id", "id") == ("system.slice", "ocirt-id.scope")
    assert systemd.slice_path("machine-a-b.slice") == \
        "/machine.slice/machine-a.slice/machine-a-b.slice"
    for bad in ("/abs/path", "a:b", "foo:p:n"):
        with pytest.raises(ConfigError) as e:
            systemd.parse(bad, "x")
        assert e.value.path == "linux.cgroupsPath"


def test_systemd_not_running_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(systemd, "running", lambda: False)
    with pytest.raises(OcirtError) as e:
        systemd.place("system.slice:ocirt:x", "x", "v2")
    assert "systemd is not running" in str(e.value)


def test_systemd_name_checks():
    assert systemd.parse(None, "id1", user=True) == ("user.slice", "ocirt-id1.scope")
    assert systemd.parse("machine-a.slice::n", "x") == ("machine-a.slice", "n.scope")
    for bad in ("a--b.slice:p:n", "-a.slice:p:n", "a-.slice:p:n", "x.slice:p/q:n",
                "x.slice:p:n.slice", "x.slice:p:", "x.slice:p:" + "n" * 300):
        with pytest.raises(ConfigError) as e:
            systemd.parse(bad, "x")
        assert e.value.path == "linux.cgroupsPath", bad


def test_dbus_addresses():
    from ocirt.cgroups import sdbus
    assert sdbus._socket_paths("unix:path=/run/dbus/system_bus_socket") == \
        ["/run/dbus/system_bus_socket"]
    assert sdbus._socket_paths("tcp:host=x,port=1;unix:abstract=/tmp/a%2cb,guid=1") == \
        ["\0/tmp/a,b"]


def _alive(pid):
    from ocirt.state import process_alive
    return process_alive(pid, None)


def _wait(pred, timeout=10):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_keeper_exits_if_ocirt_dies_before_releasing_it():
    pid, gate = systemd._spawn_keeper()
    assert _alive(pid)
    os.close(gate)  # what ocirt dying does
    assert _wait(lambda: not _alive(pid))


def test_keeper_is_a_clean_sleep_and_dies_when_systemd_is_unreachable(monkeypatch):
    pid, gate = systemd._spawn_keeper()
    os.write(gate, b"g")
    os.close(gate)
    try:
        assert _wait(lambda: open(f"/proc/{pid}/cmdline", "rb").read().startswith(
            b"ocirt-keeper\0infinity"))
        assert sorted(os.listdir(f"/proc/{pid}/fd")) == ["0", "1", "2"]
        assert all(os.readlink(f"/proc/{pid}/fd/{i}") == "/dev/null" for i in range(3))
        status = dict(ln.split(":\t", 1) for ln in open(f"/proc/{pid}/status").read()
                      .splitlines() if ":\t" in ln)
        # signals 32 and 33 belong to glibc, whose sigaction refuses them: an ignored
        # one inherited from whoever started the tests stays ignored (harmless to sleep)
        glibc = (1 << 31) | (1 << 32)
        assert int(status["SigIgn"], 16) & ~glibc == 0
        assert int(status["SigBlk"], 16) & ~glibc == 0
        assert os.getsid(pid) != os.getsid(0)  # a session of its own (not its leader)
        # delete when systemd can't be reached: the keeper is killed, nothing raised
        # (ocirt made no directory here)

        def no_systemd(user):
            raise OcirtError("--systemd-cgroup: cannot reach systemd over D-Bus: test")
        monkeypatch.setattr(systemd, "connect", no_systemd)
        from ocirt.state import proc_start_time
        systemd.stop({"unit": "ocirt-test-x.scope", "keeper": pid,
                      "keeper_start": proc_start_time(pid)[0], "scope_dirs": []})
        assert _wait(lambda: not _alive(pid))
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


# --- CLI values ------------------------------------------------------------------

def test_ram_bytes():
    from ocirt.lifecycle.update import ram_bytes
    assert ram_bytes("512m", "memory") == 512 << 20
    assert ram_bytes("1g", "memory") == 1 << 30
    assert ram_bytes("2GiB", "memory") == 2 << 30
    assert ram_bytes("1024", "memory") == 1024
    assert ram_bytes("-1", "memory") == -1
    with pytest.raises(OcirtError):
        ram_bytes("lots", "memory")


def test_update_flags_to_resources():
    from ocirt.cli.update import FLAGS, resources_from
    o, pos = FLAGS.parse(["--memory", "64m", "--memory-swap", "128m", "--cpu-shares", "512",
                          "--cpu-quota", "20000", "--cpu-period", "100000",
                          "--cpuset-cpus", "0", "--pids-limit", "7", "--blkio-weight", "300",
                          "--kernel-memory", "1m", "--memory-reservation", "32m",
                          "--cpuset-mems", "0", "ID"])
    assert pos == ["ID"]
    assert resources_from(o) == {
        "memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 32 << 20,
                   "kernel": 1 << 20},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 7}, "blockIO": {"weight": 300}}


def test_events_duration():
    from ocirt.cli.events import duration
    assert duration("5s") == 5
    assert duration("100ms") == pytest.approx(0.1)
    assert duration("1m30s") == 90
    for bad in ("5", "abc", "0s", ""):
        with pytest.raises(OcirtError):
            duration(bad)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_hugetlb_reservations_are_limited_too(tmp_path, monkeypatch, version):
    """Spec >= 1.1: hugepageLimits bound reservations too (the rsvd files, Linux >= 5.7),
    where the kernel has them; without them only the fault limit is written."""
    monkeypatch.setattr(base, "host_page_sizes", lambda: {2 << 20})
    d = str(tmp_path)
    lim, rsvd = (("hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.rsvd.limit_in_bytes")
                 if version == "v1" else ("hugetlb.2MB.max", "hugetlb.2MB.rsvd.max"))
    res = {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]}

    def apply():
        ops = v1.plan({"hugetlb": d}, res, "linux.resources") if version == "v1" \
            else v2.plan(d, res, "linux.resources")[0]
        for op in ops:
            op[0](*op[1:])
    open(os.path.join(d, lim), "w").close()
    if version == "v2":
        open(os.path.join(d, "cgroup.controllers"), "w").write("hugetlb")
    apply()
    assert open(os.path.join(d, lim)).read() == str(4 << 20)
    assert not os.path.exists(os.path.join(d, rsvd))
    open(os.path.join(d, rsvd), "w").close()
    apply()
    assert open(os.path.join(d, rsvd)).read() == str(4 << 20)


# --- the manager: one interface, restored from its record --------------------------

V1_RECORD = {"driver": "v1", "path": "/ocirt/c1",
             "dirs": {"memory": "/sys/fs/cgroup/memory/ocirt/c1",
                      "freezer": "/sys/fs/cgroup/freezer/ocirt/c1", "": "/u/ocirt/c1"},
             "hier": [["memory", "memory", "/sys/fs/cgroup/memory/ocirt/c1"],
                      ["freezer", "freezer", "/sys/fs/cgroup/freezer/ocirt/c1"],
                      ["", "unified", "/u/ocirt/c1"]],
             "created": ["/sys/fs/cgroup/memory/ocirt/c1"], "cgroupns": False,
             "linux_devices": [], "systemd": None}
V2_RECORD = {"driver": "v2", "path": "/ocirt/c2", "dir": "/sys/fs/cgroup/ocirt/c2",
             "mount": "/sys/fs/cgroup", "created": ["/sys/fs/cgroup/ocirt",
                                                    "/sys/fs/cgroup/ocirt/c2"],
             "cgroupns": True, "linux_devices": [{"type": "c", "major": 1, "minor": 3}],
             "systemd": {"unit": "ocirt-c2.scope", "user": True}}


@pytest.mark.parametrize("record", [V1_RECORD, V2_RECORD])
def test_restore_gives_back_the_record_unchanged(record):
    """state.json's ocirt.cgroup is read by the C front too: a restored manager
    writes it back key for key, in the same order."""
    import json
    from ocirt import cgroups
    m = cgroups.restore(json.loads(json.dumps(record)))
    assert isinstance(m, base.Manager) and m.driver == record["driver"]
    assert list(m.to_state().items()) == list(record.items())
    assert m.placement == record["systemd"]
    assert cgroups.restore(None) is None


def test_leaves_and_sub_dirs():
    from ocirt import cgroups
    m1, m2 = cgroups.restore(V1_RECORD), cgroups.restore(V2_RECORD)
    assert m1.leaves() == [h[2] for h in V1_RECORD["hier"]]
    assert m2.leaves() == [V2_RECORD["dir"]]
    assert m1.sub_dirs({"memory": "sub"}) == [V1_RECORD["hier"][0][2] + "/sub",
                                              V1_RECORD["hier"][1][2], V1_RECORD["hier"][2][2]]
    with pytest.raises(OcirtError, match="unknown controller"):
        m1.sub_dirs({"bogus": "x"})
    assert m2.sub_dirs({"": "a/b"}) == [V2_RECORD["dir"] + "/a/b"]
    with pytest.raises(OcirtError, match="one path"):
        m2.sub_dirs({"memory": "x"})


@pytest.mark.parametrize("err,placed", [(13, True), (1, True), (2, False)])
def test_a_refused_move_is_asked_of_systemd_by_errno(monkeypatch, err, placed):
    """With a systemd placement, EACCES/EPERM from cgroup.procs (rootless, crossing a
    cgroup the caller does not own) makes systemd move the process; any other errno
    stands, and without a placement every failure does."""
    from ocirt import cgroups

    def refuse(pid, dirs):
        raise OcirtError("cgroup: adding pid: some text", errno=err)
    monkeypatch.setattr(fs, "add_pid", refuse)
    asked = []
    monkeypatch.setattr(systemd, "attach", lambda info, pid: asked.append((info, pid)))
    m = cgroups.restore(V2_RECORD)
    if placed:
        m.apply(42)
        m.join(43)
        assert asked == [(V2_RECORD["systemd"], 42), (V2_RECORD["systemd"], 43)]
    else:
        with pytest.raises(OcirtError) as e:
            m.apply(42)
        assert e.value.errno == err and asked == []
    m.placement = None
    with pytest.raises(OcirtError):
        m.join(44)


def test_fs_errors_carry_errno(tmp_path):
    import errno
    with pytest.raises(ConfigError) as e:
        fs.write(str(tmp_path), "missing", 1, "linux.resources.x")
    assert e.value.errno == errno.ENOENT and e.value.field == "linux.resources.x"
    os.mkdir(tmp_path / "adir")
    with pytest.raises(ConfigError) as e:
        fs.write(str(tmp_path), "adir", 1, "f")
    assert e.value.errno == errno.EISDIR
    with pytest.raises(OcirtError) as e:
        fs.add_pid(1, [str(tmp_path / "nope")])
    assert e.value.errno == errno.ENOENT and "adding pid 1" in str(e.value)


def test_v2_manager_on_files(tmp_path):
    """The v2 operations read and write the cgroup's files (here plain ones)."""
    from ocirt import cgroups
    d = str(tmp_path)
    for name, text in (("cgroup.freeze", "0"), ("cgroup.events", "populated 1\nfrozen 1\n"),
                       ("cgroup.procs", "7\n5\n"), ("memory.events", "oom 2\noom_kill 1\n")):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    os.mkdir(os.path.join(d, "child"))
    with open(os.path.join(d, "child", "cgroup.procs"), "w") as f:
        f.write("9\n5\n")
    m = cgroups.restore(dict(V2_RECORD, dir=d, systemd=None))
    assert m.pids() == [5, 7, 9]
    assert not m.is_frozen()
    m.freeze()
    assert m.is_frozen()
    m.thaw()
    assert not m.is_frozen()
    assert m.oom_kills() == 1
    os.unlink(os.path.join(d, "cgroup.freeze"))
    assert not m.is_frozen()  # unreadable: not frozen


def test_a_driver_must_implement_the_interface():
    with pytest.raises(TypeError, match="lacks"):
        class Half(base.Manager):
            def leaves(self):
                return []
