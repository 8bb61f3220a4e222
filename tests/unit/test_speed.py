"""ocirt.process.speed, the cgroup primer: which cgroup.procs the no-op migration
writes to, and the front's primer pipe (taken only when it is one)."""
import os

import pytest

from ocirt.process import speed

HYBRID_CG = """9:name=systemd:/
8:pids:/user.slice
1:cpu,cpuacct:/
0::/user.slice/x.scope
"""
HYBRID_MI = """24 30 0:22 / /sys rw,nosuid - sysfs sysfs rw
33 24 0:28 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
35 33 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
36 33 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
37 33 0:32 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
"""


def test_unified_preferred():
    assert speed.pick(HYBRID_CG, HYBRID_MI) == \
        "/sys/fs/cgroup/unified/user.slice/x.scope/cgroup.procs"


def test_v1_only():
    cg = "\n".join(line for line in HYBRID_CG.splitlines() if not line.startswith("0::"))
    mi = "\n".join(line for line in HYBRID_MI.splitlines() if "cgroup2" not in line)
    assert speed.pick(cg, mi) == "/sys/fs/cgroup/systemd/cgroup.procs"
    mi = "\n".join(line for line in mi.splitlines() if "systemd" not in line)
    assert speed.pick(cg, mi) == "/sys/fs/cgroup/pids/user.slice/cgroup.procs"


def test_mount_root_below_own_path():
    # a bind-mounted subtree (root field /user.slice): our path is relative to it
    mi = "34 33 0:29 /user.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert speed.pick("0::/user.slice/x.scope\n", mi) == "/sys/fs/cgroup/x.scope/cgroup.procs"
    # our cgroup outside the mounted subtree: nothing to write to
    assert speed.pick("0::/other\n", mi) is None


def test_root_cgroup():
    mi = "34 33 0:29 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert speed.pick("0::/\n", mi) == "/sys/fs/cgroup/cgroup.procs"


def test_prime_and_wait_never_raise(monkeypatch):
    monkeypatch.setattr(speed, "own_procs_file", lambda: "/nonexistent/cgroup.procs")
    speed.prime()
    speed.wait()
    speed.wait()  # a second wait is a no-op


def test_the_fronts_pipe_is_taken_and_released(monkeypatch):
    r, w = os.pipe()
    fd = os.dup2(w, 70, inheritable=True)
    os.close(w)
    try:
        speed.prime(fd)
        assert speed._primer_fd == fd
        assert not os.get_inheritable(fd)
        speed.release()
        assert os.read(r, 1) == b"", "the primer would not see its pipe closed"
    finally:
        speed.release()
        speed.wait()
        os.close(r)


@pytest.mark.parametrize("value", ["1", "nonsense", "99999"])
def test_anything_but_the_fronts_pipe_is_left_alone(monkeypatch, value):
    from ocirt.main import from_front
    env = {"OCIRT_PRIMER_FD": value, "OTHER": "x"}
    fd = from_front(env)["primer_fd"]
    assert env == {"OTHER": "x"}, "taken out of the environment"
    speed.prime(fd)
    speed.wait()
    assert speed._primer_fd is None
    assert os.fstat(1) is not None  # stdout still open


def test_no_thread_with_the_systemd_driver(monkeypatch):
    monkeypatch.setattr(speed, "own_procs_file", lambda: pytest.fail("primed"))
    speed.prime(None, systemd=True)
    assert speed._lock is None


def test_what_the_front_hands_over():
    from ocirt.main import from_front
    env = {"OCIRT_PRIMER_FD": "70", "OCIRT_START_ERROR": "boom",
           "OCIRT_START_STOPPED": "1", "PATH": "/bin"}
    assert from_front(env) == {"primer_fd": 70, "start_error": "boom",
                               "start_stopped": True}
    assert env == {"PATH": "/bin"}
    assert from_front(env) == {"primer_fd": None, "start_error": None,
                               "start_stopped": False}
