"""Rootless Docker with limits on cgroup v2, through ocirt (issue 17): in the qemu
guest booted with systemd (tests/vm: pure cgroup v2, the system bus, user@UID.service
for user managers, Debian's dbus-user-session for their buses).

One boot runs rootless_docker_guest.sh (beside this file), which makes a user `dk`
with subuids, starts its user manager and runs dockerd-rootless.sh as a user unit
(Delegate=yes, native.cgroupdriver=systemd, vfs, rootlesskit --net=host) with ocirt
added as a runtime. Inside rootlesskit's user namespace ocirt is uid 0; it must find
dk's systemd (the session bus, the uid behind the namespace) to get a delegated
scope. Then, with `docker run --runtime ocirt`:
* --memory 32m --memory-swap 32m: a 64 MiB allocation is OOM-killed, OOMKilled true;
* --pids-limit 8 stops a fork bomb; --cpus 0.2 holds a busy loop near 20% (cpu.stat
  of the container's cgroup over 6 s, bounds 5-30%);
* docker update --memory 48m of the running container reaches its memory.max;
* a second user whose manager has no memory controller (a drop-in leaves it out of
  user@UID.service's Delegate=) gets one line naming the controller and how to
  delegate it, and a container without limits still runs.
The script prints `CHECK <name> <ok|FAIL> <seconds> <detail>` per check.
"""
import os
import re
import shlex
import shutil

import pytest

from helpers import OCIRT, guest_harness
import rootless_user

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(HERE, "rootless_docker_guest.sh")
CHECKS = ("user-managers", "dockerd", "import", "memory-oom", "pids-fork-bomb",
          "cpu-quota", "update-memory", "dockerd2", "nodelegation-memory",
          "nodelegation-plain")
# What the guest needs from the host's / (it sees the host's root read-only).
NEEDS = [
    ("/usr/share/docker.io/contrib/dockerd-rootless.sh", "docker.io"),
    ("/usr/sbin/dockerd", "docker.io"),
    ("/usr/bin/docker", "docker.io"),
    ("/usr/bin/containerd", "containerd"),
    ("/usr/bin/rootlesskit", "rootlesskit"),
    ("/usr/bin/newuidmap", "uidmap"),
    ("/usr/lib/systemd/user/dbus.socket", "dbus-user-session"),
    ("/usr/sbin/useradd", "passwd"),
    ("/usr/bin/setpriv", "util-linux"),
]


def _guest():
    return guest_harness("rootless Docker", systemd=True)


def _closed_dirs():
    """Directories on the way to ocirt that an unprivileged user can't search: made
    o+x in the guest's overlay (nothing reaches the host)."""
    out = []
    for p in rootless_user.launcher_paths():
        for d in rootless_user._path_dirs(p):
            if d not in out and not rootless_user._other_can_search(d):
                out.append(d)
    return out


def test_rootless_docker_with_limits():
    guest = _guest()
    cmd = " ".join(shlex.quote(a) for a in ["sh", SCRIPT, OCIRT, *_closed_dirs()])
    rc, out = guest.run_in_guest(cmd, timeout=1200, systemd=True)
    print(out)
    missing = re.findall(r"^MISSING (.*)$", out, re.M)
    assert not missing, f"the guest lacks {missing} (rc {rc})"
    setup = re.findall(r"^SETUP-FAILED (.*)$", out, re.M)
    assert not setup, f"the rootless Docker set-up failed in the guest: {setup[0]}\n" \
        + out[-6000:]
    assert rc == 0, f"the guest script exited {rc}:\n{out[-6000:]}"
    got = {}
    for name, res, secs, detail in re.findall(r"^CHECK (\S+) (ok|FAIL) ([\d.]+) ?(.*)$",
                                              out, re.M):
        got[name] = (res, float(secs), detail)
    print("rootless Docker checks (seconds in the guest):")
    for name in CHECKS:
        if name in got:
            print(f"  {name}: {got[name][0]} in {got[name][1]:.1f}s  {got[name][2][:200]}")
    absent = [c for c in CHECKS if c not in got]
    assert not absent, f"checks that did not report: {absent}\n{out[-6000:]}"
    failed = {c: got[c][2] for c in CHECKS if got[c][0] != "ok"}
    assert not failed, f"failed in the guest: {failed}\n{out[-6000:]}"
    # the refusal is one line naming the field, the controller and the fix
    line = got["nodelegation-memory"][2]
    assert "linux.resources.memory.limit" in line and "user@.service" in line, line


def test_script_is_valid_sh():
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no sh")
    import subprocess
    r = subprocess.run([sh, "-n", SCRIPT], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
