"""Process attributes of runtime-spec 1.2 for the container process and exec'd
processes: ioPriority, scheduler, execCPUAffinity; apparmorProfile and
selinuxLabel are refused clearly on a host without them."""
import glob
import os

import pytest

from helpers import assert_error

PROBE = ("ionice -p $$; cut -d' ' -f19,41 /proc/self/stat; "
         "grep Cpus_allowed_list /proc/self/status | cut -f2")


def _bundle(ocirt, **proc):
    b = ocirt.bundle(["sh", "-c", PROBE])
    b.process.update(proc)
    return b.write()


def test_io_priority_and_scheduler_for_run_and_exec(ocirt):
    b = _bundle(ocirt, ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 6},
                scheduler={"policy": "SCHED_BATCH", "nice": 5})
    r = ocirt.run(ocirt.new_id(), b).ok()
    lines = r.stdout.splitlines()
    assert lines[0] == "best-effort: prio 6"
    assert lines[1] == "5 3"  # nice 5, policy 3 (SCHED_BATCH)
    b.args("sleep", "600").write()
    cid = ocirt.new_id()
    ocirt.run(cid, b, "-d").ok()
    r = ocirt("exec", cid, "sh", "-c", PROBE).ok()
    assert r.stdout.splitlines()[:2] == ["best-effort: prio 6", "5 3"]
    ocirt.delete(cid, "--force").ok()


def test_exec_process_file_io_priority_overrides_and_needs_no_priority(ocirt, tmp_path):
    """An exec process.json's ioPriority (class alone: priority is OPTIONAL) wins over
    the config's."""
    import json
    b = _bundle(ocirt, ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 4})
    b.args("sleep", "600").write()
    cid = ocirt.new_id()
    ocirt.run(cid, b, "-d").ok()
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"ioPriority": {"class": "IOPRIO_CLASS_IDLE"},
                             "args": ["ionice"], "cwd": "/"}))
    assert ocirt("exec", "--process", str(p), cid).ok().stdout.strip() == "idle"
    ocirt.delete(cid, "--force").ok()


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two CPUs to leave one out")
def test_deadline_scheduler_with_a_cpuset_is_refused_clearly(ocirt):
    """SCHED_DEADLINE needs every CPU in the affinity: with linux.resources.cpu.cpus
    leaving some out the kernel says EPERM; the line says why (runc's words)."""
    b = _bundle(ocirt, scheduler={"policy": "SCHED_DEADLINE", "nice": 19, "runtime": 42000,
                                  "deadline": 1000000, "period": 1000000})
    b.config["linux"].setdefault("resources", {})["cpu"] = {"cpus": "0"}
    b.write()
    assert_error(ocirt.run(ocirt.new_id(), b), "process.scheduler",
                 "can't be used together with AllowedCPUs")


def test_idle_io_class_and_idle_policy(ocirt):
    b = _bundle(ocirt, ioPriority={"class": "IOPRIO_CLASS_IDLE", "priority": 0},
                scheduler={"policy": "SCHED_IDLE"})
    r = ocirt.run(ocirt.new_id(), b).ok()
    lines = r.stdout.splitlines()
    assert lines[0].startswith("idle")
    assert lines[1].split()[1] == "5"  # SCHED_IDLE


def test_realtime_policy_applied_or_refused_clearly(ocirt):
    b = _bundle(ocirt, scheduler={"policy": "SCHED_FIFO", "priority": 10})
    r = ocirt.run(ocirt.new_id(), b)
    v1_rt = glob.glob("/sys/fs/cgroup/cpu/cpu.rt_runtime_us") or \
        glob.glob("/sys/fs/cgroup/cpu,cpuacct/cpu.rt_runtime_us")
    if r.returncode == 0:
        assert r.stdout.splitlines()[1].split()[1] == "1"  # SCHED_FIFO
    else:
        assert v1_rt, f"SCHED_FIFO refused without a v1 rt limit to explain it: {r!r}"
        assert_error(r, "process.scheduler", "SCHED_FIFO")


def test_exec_cpu_affinity_final(ocirt):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("execCPUAffinity needs two CPUs to be observable (this host has one)")
    cpu = max(os.sched_getaffinity(0))
    b = _bundle(ocirt, execCPUAffinity={"initial": str(min(os.sched_getaffinity(0))),
                                        "final": str(cpu)})
    b.args("sleep", "600").write()
    cid = ocirt.new_id()
    ocirt.run(cid, b, "-d").ok()
    # not applicable to the init process
    init = ocirt.state(cid)["pid"]
    assert len(os.sched_getaffinity(init)) > 1
    r = ocirt("exec", cid, "sh", "-c", PROBE).ok()
    assert r.stdout.splitlines()[2] == str(cpu)
    ocirt.delete(cid, "--force").ok()


def test_exec_cpu_affinity_initial_is_applied(ocirt):
    b = _bundle(ocirt, execCPUAffinity={"initial": "4000"})
    b.args("sleep", "600").write()
    cid = ocirt.new_id()
    ocirt.run(cid, b, "-d").ok()
    assert_error(ocirt("exec", cid, "true"), "process.execCPUAffinity.initial")
    ocirt.delete(cid, "--force").ok()


@pytest.mark.parametrize("proc,field", [
    ({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 9}}, "process.ioPriority.priority"),
    ({"ioPriority": {"class": "IOPRIO_CLASS_XX", "priority": 1}}, "process.ioPriority.class"),
    ({"scheduler": {"policy": "SCHED_OTHER", "nice": 40}}, "process.scheduler.nice"),
    ({"scheduler": {"policy": "SCHED_OTHER", "priority": 3}}, "process.scheduler.priority"),
    ({"scheduler": {"policy": "SCHED_BATCH", "runtime": 5}}, "process.scheduler.runtime"),
    ({"scheduler": {"policy": "SCHED_FIFO", "priority": 0}}, "process.scheduler.priority"),
    ({"execCPUAffinity": {"final": "1-x"}}, "process.execCPUAffinity.final"),
    ({"execCPUAffinity": {"initial": "3-1"}}, "process.execCPUAffinity.initial"),
])
def test_bad_attributes(ocirt, proc, field):
    b = _bundle(ocirt, **proc)
    assert_error(ocirt.create(ocirt.new_id(), b), field)


def test_lsm_the_host_lacks_is_refused(ocirt):
    if os.path.exists("/sys/module/apparmor/parameters/enabled"):
        pytest.skip("this host has AppArmor: the refusal can't be tested")
    b = _bundle(ocirt, apparmorProfile="docker-default")
    assert_error(ocirt.create(ocirt.new_id(), b), "process.apparmorProfile", "AppArmor")
    if not os.path.exists("/sys/fs/selinux/enforce"):
        b = _bundle(ocirt, selinuxLabel="system_u:system_r:container_t:s0")
        assert_error(ocirt.create(ocirt.new_id(), b), "process.selinuxLabel", "SELinux")
