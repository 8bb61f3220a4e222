"""cgroup v2 specifics: conversions, the eBPF device filter, the no-internal-process
rule, unified keys, hugetlb. These need a pure cgroup v2 host: on this (v1) machine
test_cgroups_v2_guest.py runs them, with test_cgroups.py, in the qemu guest."""
import json
import os
import subprocess
import sys

import pytest

from helpers import assert_error, wait_for
from test_cgroups import MODE, cg_dir, cg_path, mk

pytestmark = pytest.mark.skipif(
    MODE != "v2", reason="this host runs cgroup v1 (no unified hierarchy at /sys/fs/cgroup): "
    "the v2 tests run in the qemu guest (tests/conformance/test_cgroups_v2_guest.py)")


def rd(ocirt, cid, name):
    with open(os.path.join(cg_dir(ocirt, cid), name)) as f:
        return f.read().strip()


def test_conversions(ocirt):
    res = {"memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 16 << 20},
           "cpu": {"shares": 1024, "quota": 30000, "period": 60000}}
    cid, b = mk(ocirt, ["sleep", "600"], res)
    ocirt.create(cid, b).ok()
    assert rd(ocirt, cid, "memory.max") == str(64 << 20)
    assert rd(ocirt, cid, "memory.swap.max") == str(32 << 20), "swap.max = swap - limit"
    assert rd(ocirt, cid, "memory.low") == str(16 << 20)
    assert rd(ocirt, cid, "cpu.weight") == "39", "1 + (1024-2)*9999/262142"
    assert rd(ocirt, cid, "cpu.max") == "30000 60000"
    ocirt.delete(cid, "--force").ok()


def test_unified_keys_and_hugetlb(ocirt):
    res = {"unified": {"memory.high": "50000000", "pids.max": "12"}}
    sizes = os.listdir("/sys/kernel/mm/hugepages") if os.path.isdir(
        "/sys/kernel/mm/hugepages") else []
    have_2m = "hugepages-2048kB" in sizes
    if have_2m:
        res["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 << 20}]
    cid, b = mk(ocirt, ["sleep", "600"], res)
    ocirt.create(cid, b).ok()
    assert int(rd(ocirt, cid, "memory.high")) == 50000000 // 4096 * 4096
    assert rd(ocirt, cid, "pids.max") == "12"
    if have_2m:
        assert rd(ocirt, cid, "hugetlb.2MB.max") == str(4 << 20)
    ocirt.delete(cid, "--force").ok()


def test_device_filter_is_an_attached_ebpf_program(ocirt):
    cid, b = mk(ocirt, ["sleep", "600"], {"devices": [{"allow": False, "access": "rwm"}]})
    ocirt.create(cid, b).ok()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    from ocirt.cgroups import bpf
    fd = os.open(cg_dir(ocirt, cid), os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(bpf.query(fd)) == 1
        # update replaces it, never stacks a second one
        f = os.path.join(b.path, "res.json")
        with open(f, "w") as fp:
            json.dump({"devices": [{"allow": False, "access": "rwm"}]}, fp)
        ocirt("update", "-r", f, cid).ok()
        assert len(bpf.query(fd)) == 1
    finally:
        os.close(fd)
    ocirt.delete(cid, "--force").ok()


@pytest.mark.parametrize("res,field", [
    ({"memory": {"kernel": 1 << 20}}, "linux.resources.memory.kernel"),
    ({"memory": {"kernelTCP": 1 << 20}}, "linux.resources.memory.kernelTCP"),
    ({"memory": {"swappiness": 10}}, "linux.resources.memory.swappiness"),
    ({"memory": {"disableOOMKiller": True}}, "linux.resources.memory.disableOOMKiller"),
    ({"memory": {"useHierarchy": False}}, "linux.resources.memory.useHierarchy"),
    ({"cpu": {"realtimeRuntime": 1000}}, "linux.resources.cpu.realtimeRuntime"),
    ({"network": {"classID": 1}}, "linux.resources.network.classID"),
    ({"memory": {"swap": 1 << 30}}, "linux.resources.memory.swap"),
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 12345}]},
     "linux.resources.hugepageLimits[0].limit"),
])
def test_v2_refusals(ocirt, res, field):
    cid, b = mk(ocirt, ["true"], res)
    line = assert_error(ocirt.create(cid, b), field)
    assert not os.path.exists(cg_dir(ocirt, cid)), line
    assert ocirt.state_dirs() == []


def test_no_internal_process_rule(ocirt):
    """A parent cgroup that holds a process can't get controllers enabled: the error
    says which cgroup and why, and nothing is left."""
    busy = f"/sys/fs/cgroup/ocirt-test-{ocirt.marker}/busy"
    os.makedirs(busy)
    p = subprocess.Popen(["sleep", "600"])
    try:
        with open(f"{busy}/cgroup.procs", "w") as f:
            f.write(str(p.pid))
        cid = ocirt.new_id()
        b = ocirt.bundle(["true"])
        b.config["linux"]["cgroupsPath"] = f"/ocirt-test-{ocirt.marker}/busy/{cid}"
        b.config["linux"]["resources"] = {"pids": {"limit": 5}}
        b.write()
        line = assert_error(ocirt.create(cid, b), "linux.resources.pids", busy,
                            "no-internal-process")
        assert not os.path.exists(f"{busy}/{cid}"), line
        # without limits the container is still placed (accounting only)
        b.config["linux"]["resources"] = {}
        b.write()
        r = ocirt.create(cid, b)
        if r.returncode == 0:
            ocirt.delete(cid, "--force").ok()
    finally:
        p.kill()
        p.wait()
        wait_for(lambda: not open(f"{busy}/cgroup.procs").read().strip(), what="empty")
        os.rmdir(busy)
        os.rmdir(os.path.dirname(busy))


def test_oom_kill_count_from_memory_events(ocirt, tmp_path):
    u = tmp_path / "u.json"
    cid, b = mk(ocirt, ["sh", "-c", "exec tail /dev/zero"],
                {"memory": {"limit": 32 << 20, "swap": 32 << 20}})
    r = ocirt.run(cid, b, "--usage-file", str(u))
    assert r.returncode == 137, r
    rep = json.loads(u.read_text())
    assert rep["oom_killed"] is True and rep["oom_kills"] >= 1
    assert rep["memory"]["peak_bytes"] >= 24 << 20, "memory.peak"
