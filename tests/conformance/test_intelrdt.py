"""linux.intelRdt through the real CLI on a host without resctrl (this one: no Intel
RDT hardware): every config asking for it is refused by name, with exit 1, before any
process starts, leaving nothing behind (the spec: "If no mounted resctrl
pseudo-filesystem is available ... the runtime MUST generate an error"). `update
--l3-cache-schema/--mem-bw-schema` on a container without RDT is refused in runc's
words and changes nothing. The group itself (schemata, tasks, mon_groups, delete) is
driven against a fake resctrl tree in tests/unit/test_intelrdt_unit.py."""
import os

import pytest

from helpers import REPO, assert_error, wait_for


def _resctrl_mounted():
    with open("/proc/self/mountinfo") as f:
        return " - resctrl " in f.read()


pytestmark = pytest.mark.skipif(_resctrl_mounted(),
                                reason="resctrl is mounted here: these need a host without")

CONFIGS = [
    {},
    {"closID": "ocirt-test"},
    {"closID": "/"},
    {"l3CacheSchema": "L3:0=f"},
    {"memBwSchema": "MB:0=20"},
    {"closID": "guaranteed_group", "schemata": ["L3:0=7f0;1=1f", "L2:0=f", "MB:0=20;1=70"]},
    {"enableMonitoring": True},
    {"closID": "ocirt-test", "l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=20",
     "enableMonitoring": True},
]


@pytest.mark.parametrize("verb", ["create", "run"])
@pytest.mark.parametrize("rdt", CONFIGS)
def test_refused_without_resctrl(ocirt, bundle, rdt, verb):
    bundle.linux["intelRdt"] = rdt
    bundle.write()
    cid = ocirt.new_id()
    res = getattr(ocirt, verb)(cid, bundle)
    assert_error(res, "linux.intelRdt", "not supported or enabled")
    assert ocirt.state_dirs() == [], "a refused create left a state dir"
    # (the C front's cgroup primer may outlive ocirt by a few ms: it goes on its own)
    wait_for(lambda: ocirt.live_pids() == [], timeout=2, what="no process left")
    assert not os.path.exists("/sys/fs/resctrl/ocirt-test")
    assert ocirt("list", "-q").ok().stdout.strip() == ""


@pytest.mark.parametrize("rdt,field", [
    ({"closID": "../escape", "l3CacheSchema": "L3:0=f"}, "linux.intelRdt.closID"),
    ({"closID": "info"}, "linux.intelRdt.closID"),
    ({"schemata": ["L3:0=f", "MB:0=20\nL3:0=1"]}, "linux.intelRdt.schemata[1]"),
    ({"l3CacheSchema": "not a line"}, "linux.intelRdt.l3CacheSchema"),
    ({"memBwSchema": "L3:0=f"}, "linux.intelRdt.memBwSchema"),
])
def test_malformed_intelrdt_named(ocirt, bundle, rdt, field):
    bundle.linux["intelRdt"] = rdt
    bundle.write()
    assert_error(ocirt.create(ocirt.new_id(), bundle), field)
    assert ocirt.state_dirs() == []


def _pids_max(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if "pids" in ctrls.split(",") or ctrls == "":
                base = "/sys/fs/cgroup/pids" if ctrls else "/sys/fs/cgroup"
                p = os.path.join(base + path, "pids.max")
                if os.path.exists(p):
                    with open(p) as g:
                        return g.read().strip()
    return None


@pytest.mark.parametrize("flag,words", [
    ("--l3-cache-schema=L3:0=f", "Intel RDT/CAT: l3 cache schema is not enabled"),
    ("--mem-bw-schema=MB:0=20", "Intel RDT/MBA: memory bandwidth schema is not enabled"),
])
def test_update_rdt_flags_on_a_container_without_rdt(ocirt, bundle, flag, words):
    """runc checks the host first (no resctrl here), and refuses before any change:
    the pids limit given with the flag is not applied."""
    bundle.linux["cgroupsPath"] = f"/ocirt-test-{ocirt.marker}/rdt"
    bundle.linux["resources"] = {"pids": {"limit": 50}}
    bundle.args("sleep", "600").write()
    cid = ocirt.new_id()
    ocirt.create(cid, bundle).ok()
    pid = ocirt.state(cid)["pid"]
    before = _pids_max(pid)
    assert before == "50"
    assert_error(ocirt("update", flag, "--pids-limit", "60", cid), flag.split("=")[0], words)
    assert _pids_max(pid) == before
    # runc takes an empty value for no value
    ocirt("update", flag.split("=")[0], "", "--pids-limit", "70", cid).ok()
    assert _pids_max(pid) == "70"
    assert ocirt.status(cid) == "created"
    ocirt.delete(cid, "--force").ok()


# --- create and delete end to end, with the unit tests' fake resctrl patched in ---------

UNIT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit")
DRIVER = """
import pickle, sys
sys.path.insert(0, {unit!r})
from test_intelrdt_unit import FakeResctrl
from ocirt import intelrdt
if {init}:
    kernel = FakeResctrl({tree!r})
    with open({tree!r} + ".pickle", "wb") as f:
        pickle.dump(kernel, f)
else:
    with open({tree!r} + ".pickle", "rb") as f:
        kernel = pickle.load(f)
intelrdt.HostFS = lambda: kernel
intelrdt.resctrl_mount_info = lambda *a: (kernel.root, "rw")
from ocirt.main import main
sys.exit(main(sys.argv[1:]))
"""


def _with_fake(ocirt, tree, *args, init=False):
    """`ocirt args...` in a Python whose resctrl is the fake tree at `tree` (the
    container inherits stdout and stderr: files, not pipes)."""
    import subprocess
    import sys
    import tempfile
    code = DRIVER.format(unit=UNIT, tree=str(tree), init=init)
    argv = [sys.executable, "-c", code, "--root", ocirt.root, *map(str, args)]
    with tempfile.TemporaryFile() as err:
        p = subprocess.run(argv, env=ocirt.env({"PYTHONPATH": REPO}),
                           stdout=subprocess.DEVNULL, stderr=err, timeout=60,
                           stdin=subprocess.DEVNULL)
        err.seek(0)
        p.stderr = err.read().decode(errors="replace")
    return p


def _tasks(path):
    with open(os.path.join(path, "tasks")) as f:
        return [int(x) for x in f.read().split()]


def test_create_places_init_and_delete_removes_the_group(ocirt, bundle, tmp_path):
    tree = tmp_path / "resctrl"
    bundle.linux["intelRdt"] = {"l3CacheSchema": "L3:0=7f0;1=1f", "memBwSchema": "MB:0=20",
                                "enableMonitoring": True}
    bundle.args("sleep", "600").write()
    cid = ocirt.new_id()
    p = _with_fake(ocirt, tree, "create", "--bundle", bundle.path, cid, init=True)
    assert p.returncode == 0, p.stderr
    ocirt._note_pid(cid)
    st = ocirt.state(cid)
    group = tree / cid
    with open(group / "schemata") as f:
        assert f.read() == "L3:0=7f0;1=1f\nMB:0= 20;1=100\n"
    placed = _tasks(group)
    assert placed and _tasks(group / "mon_groups" / cid) == placed
    # the placed pid is init or the intermediate that forked it (then gone)
    assert st["pid"] in placed or not os.path.exists(f"/proc/{placed[0]}")
    p = _with_fake(ocirt, tree, "delete", "--force", cid)
    assert p.returncode == 0, p.stderr
    assert not group.exists() and ocirt.state_dirs() == []


def test_failed_create_leaves_no_group(ocirt, bundle, tmp_path):
    tree = tmp_path / "resctrl"
    bundle.linux["intelRdt"] = {"closID": "made-here", "l3CacheSchema": "L3:0=f"}
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    bundle.write()
    p = _with_fake(ocirt, tree, "create", "--bundle", bundle.path, ocirt.new_id(), init=True)
    assert p.returncode == 1 and "createRuntime" in p.stderr, p.stderr
    assert not (tree / "made-here").exists() and ocirt.state_dirs() == []
