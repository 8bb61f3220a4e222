"""Checks that the cgroup-v2 test VM (tests/vm/guest.py) gives what it promises.

One boot (~10-30 s under TCG) runs all the checks; skipped where the VM is not
available (see tests/vm/setup.sh).
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guest  # noqa: E402

ok, why = guest.available()
pytestmark = pytest.mark.skipif(not ok, reason=f"test VM not available: {why}")

SCRIPT = r"""
set -u
echo "cgroup=$(cat /proc/self/cgroup)"
echo "controllers=$(cat /sys/fs/cgroup/cgroup.controllers)"
echo "subtree=$(cat /sys/fs/cgroup/cgroup.subtree_control)"
echo "fstype=$(stat -f -c %T /sys/fs/cgroup)"
echo "cwd=$(pwd)"
echo "uid=$(id -u)"
echo "foo=$FOO"
mkdir /sys/fs/cgroup/vmtest && echo 64M >/sys/fs/cgroup/vmtest/memory.max \
  && echo "memmax=$(cat /sys/fs/cgroup/vmtest/memory.max)"
sh -c 'echo $$ >/sys/fs/cgroup/vmtest/cgroup.procs && echo "child=$(cat /proc/self/cgroup)"'
unshare -Urpmf --mount-proc sh -c 'echo "userns_uid=$(id -u) pid1=$(cat /proc/1/comm)"'
echo "py=$(/usr/bin/python3 -c 'print(6*7)')"
touch /work/.ocirt-vm-write-test && echo "write=ok"
exit 7
"""


def _kv(out):
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_guest_is_cgroup_v2_with_userns():
    rc, out = guest.run_in_guest(SCRIPT, timeout=600, env={"FOO": "bar baz"})
    kv = _kv(out)
    assert rc == 7, out
    assert kv["cgroup"] == "0::/", out
    for c in ("cpuset", "cpu", "io", "memory", "pids"):
        assert c in kv["controllers"].split(), out
        assert c in kv["subtree"].split(), out
    assert kv["fstype"] == "cgroup2fs", out
    assert kv["cwd"] == os.getcwd(), out
    assert kv["uid"] == "0", out
    assert kv["foo"] == "bar baz", out
    assert kv["memmax"] == str(64 << 20), out
    assert kv["child"] == "0::/vmtest", out
    assert kv["userns_uid"].startswith("0 pid1="), out
    assert kv["py"] == "42", out
    assert kv["write"] == "ok", out
    # The guest's writes stay in its tmpfs overlay.
    assert not os.path.exists("/work/.ocirt-vm-write-test")


def test_timeout_kills_qemu():
    with pytest.raises(guest.GuestTimeout):
        guest.run_in_guest("sleep 600", timeout=5)
    pid = guest.last_qemu_pid
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
