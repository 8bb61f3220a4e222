"""Init goes on while create makes the cgroup and moves it in (launcher._init_directly,
init.prepare_rootfs): what it does before the "go" and what only after, recorded
through the syscall seam and fakes of the mount and device steps; and the cgroup's
plan/make split that lets create fork first (cgroups.base.Manager)."""
import os

import pytest

from ocirt import syscalls as sc
from ocirt.cgroups import fs, v2
from ocirt.errors import ConfigError
from ocirt.process import init, launcher
from ocirt.process.launcher import InitContext
from ocirt.rootfs import devices, mounts
from test_finalize import FakeSyscalls  # the recording seam, one unshare more

CGROUP_MOUNT = {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["ro"]}
SPEC_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["newinstance"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]},
    {"destination": "/data", "source": "/srv", "options": ["rbind", "ro"]},
    CGROUP_MOUNT,
]


class Recorder(FakeSyscalls):
    def unshare(self, flags):
        names = [n for n, f in (("cgroup", sc.CLONE_NEWCGROUP), ("mount", sc.CLONE_NEWNS),
                                ("network", sc.CLONE_NEWNET)) if flags & f]
        self.log.append("unshare " + ",".join(names))


class Chan:
    def __init__(self, log):
        self.log = log

    def expect(self, kind):
        self.log.append(f"expect {kind}")
        return {"type": kind}


@pytest.fixture
def log(monkeypatch):
    out = []
    old = sc.use(Recorder(out))
    yield out
    sc.use(old)


def _ctx(mounts_, namespaces=("pid", "network", "mount", "cgroup"), joined=None):
    nss = [{"type": t} for t in namespaces]
    if joined:
        nss.append({"type": joined, "path": f"/proc/1/ns/{joined}"})
    cfg = {"mounts": mounts_, "linux": {"namespaces": nss}}
    return InitContext(cfg, "/b", "/b/rootfs", {})


def _direct(monkeypatch, log, ctx):
    monkeypatch.setattr(init, "run_init", lambda c, ch, lst: log.append("run_init"))
    monkeypatch.setattr(launcher, "_join", lambda c: log.append("join"))
    launcher._init_directly(ctx, Chan(log), None)


def test_every_namespace_new_init_unshares_before_the_go(monkeypatch, log):
    ctx = _ctx(SPEC_MOUNTS)
    _direct(monkeypatch, log, ctx)
    assert ctx.early
    assert log[1:] == ["unshare mount,network", "run_init"]  # no cgroup ns yet, no go
    ctx.placed()
    # the cgroup namespace only once init is in the container's cgroup (its root)
    assert log[-2:] == ["expect go", "unshare cgroup"]
    ctx.placed()  # once
    assert log.count("expect go") == 1


@pytest.mark.parametrize("why", ["joined", "no mount namespace"])
def test_init_waits_for_the_go_when_it_would_reach_outside(monkeypatch, log, why):
    """A joined namespace is shared (a sysctl, a mount there would outlive a failed
    create); without a mount namespace the mounts land in the host's."""
    ctx = (_ctx(SPEC_MOUNTS, joined="ipc") if why == "joined"
           else _ctx(SPEC_MOUNTS, namespaces=("pid", "network")))
    _direct(monkeypatch, log, ctx)
    assert not ctx.early
    assert log.index("expect go") < log.index("run_init")
    assert log.index("expect go") < next(i for i, e in enumerate(log) if e.startswith("unshare"))


def _prepare(monkeypatch, log, mounts_, **cfg):
    ctx = _ctx(mounts_)
    ctx.cfg.update(cfg)
    ctx.placed = lambda: log.append("placed")
    monkeypatch.setattr(os, "open", lambda *a, **k: 99)
    monkeypatch.setattr(os, "close", lambda fd: None)
    monkeypatch.setattr(mounts, "do_mount",
                        lambda rootfd, m, i, *a: log.append(f"mount {m['destination']}"))
    for name in ("create_devices", "create_links", "setup_ptmx"):
        monkeypatch.setattr(devices, name, lambda *a, _n=name, **k: log.append(_n))
    init.prepare_rootfs(ctx)
    return [e for e in log if e.startswith(("mount ", "placed", "create_"))]


def test_the_cgroup_mount_and_the_devices_come_after_the_placement(monkeypatch, log):
    seq = _prepare(monkeypatch, log, SPEC_MOUNTS)
    assert seq == ["mount /proc", "mount /dev", "mount /dev/pts", "mount /dev/mqueue",
                   "mount /sys", "mount /data", "placed", "mount /sys/fs/cgroup", "placed",
                   "create_devices", "create_links"]


def test_tmpcopyup_and_unknown_filesystems_wait_for_the_placement(monkeypatch, log):
    """tmpcopyup fills a tmpfs by the image's measure: charged to the container."""
    seq = _prepare(monkeypatch, log, [
        {"destination": "/proc", "type": "proc"},
        {"destination": "/etc", "type": "tmpfs", "options": ["tmpcopyup"]},
        {"destination": "/mnt", "type": "fuse.sshfs", "source": "x"}])
    assert seq[:3] == ["mount /proc", "placed", "mount /etc"]
    assert seq[3:5] == ["placed", "mount /mnt"]


@pytest.mark.parametrize("m,before", [
    ({"type": "proc"}, True), ({"type": "sysfs"}, True), ({"type": "mqueue"}, True),
    ({"type": "devpts", "options": ["newinstance"]}, True),
    ({"type": "tmpfs", "options": ["size=64k"]}, True),
    ({"type": "bind", "source": "/x"}, True), ({"options": ["rbind"], "source": "/x"}, True),
    ({"type": "tmpfs", "options": ["tmpcopyup"]}, False),
    ({"type": "cgroup"}, False), ({"type": "cgroup2"}, False), ({"type": "overlay"}, False),
    ({"type": "tmpfs", "options": "size=1k"}, False),  # not a list: the careful answer
])
def test_before_placement(m, before):
    assert mounts.before_placement(m) is before


# --- the cgroup: planned before the fork, made after it ----------------------------

def _v2(tmp_path, monkeypatch, res=None):
    root = tmp_path / "cg"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    monkeypatch.setattr(fs, "own_cgroups", lambda: {"": "/"})
    cfg = {"linux": {"resources": res or {}}}
    return root, v2.V2Cgroup.plan(cfg, "c1", None, mounts=[("cgroup2", str(root), "/", "")])


def test_plan_makes_nothing_and_destroy_of_a_plan_touches_nothing(tmp_path, monkeypatch):
    root, cg = _v2(tmp_path, monkeypatch)
    assert not cg.made and not os.path.exists(root / "ocirt")
    cg.destroy()  # create failed before the placement: nothing is ours
    assert os.listdir(root) == ["cgroup.controllers", "cgroup.subtree_control"]


def test_plan_refuses_what_the_caller_could_not_make(tmp_path, monkeypatch):
    root, _ = _v2(tmp_path, monkeypatch)
    monkeypatch.setattr(os, "access", lambda path, mode, effective_ids=False: False)
    with pytest.raises(ConfigError) as e:
        v2.V2Cgroup.plan({"linux": {}}, "c2", None, mounts=[("cgroup2", str(root), "/", "")])
    assert e.value.field == "linux.cgroupsPath" and "Permission denied" in str(e.value)
    assert e.value.errno == 13


def test_plan_validates_the_limits_before_anything_starts(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as e:
        _v2(tmp_path, monkeypatch, {"pids": {"limit": "many"}})
    assert e.value.field == "linux.resources.pids.limit"
