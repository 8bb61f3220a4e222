"""ocirt.intelrdt's Manager driven against a fake resctrl tree in a tmp dir.

This host has no resctrl, so `FakeResctrl` plays the kernel: mkdir at the root makes
a CTRL_MON group with its own schemata, tasks and mon_groups; mkdir in mon_groups a
MON group; schemata writes are parsed as the kernel does (one write, ending in a
newline, each line an enabled resource, contiguous bitmasks, bandwidth rounded up to
the granularity) and merged; a pid written to a group's tasks leaves its old group;
a MON group only takes a pid already in its CTRL_MON group; rmdir moves the tasks back
to the default group. Errors set info/last_cmd_status, as the kernel's do."""
import errno
import os
import shutil

import pytest

from ocirt import intelrdt, state
from ocirt.errors import ConfigError, OcirtError

CID = "ctr1"


class FakeResctrl(intelrdt.HostFS):
    def __init__(self, root, l3=True, mb=True, l2=False, mon=True, domains=(0, 1),
                 cbm="7ff", mb_min=10, mb_gran=10, num_closids=4):
        self.root = str(root)
        self.mon_ok = mon
        self.domains = domains
        self.cbm = int(cbm, 16)
        self.mb_min, self.mb_gran, self.num_closids = mb_min, mb_gran, num_closids
        self.writes = []  # (path relative to root, data), every write attempted
        self.resources = [r for r, on in (("L2", l2), ("L3", l3), ("MB", mb)) if on]
        info = os.path.join(self.root, "info")
        os.makedirs(info)
        self._put(os.path.join(info, "last_cmd_status"), "ok\n")
        for r in self.resources:
            d = os.path.join(info, r)
            os.mkdir(d)
            self._put(os.path.join(d, "num_closids"), f"{num_closids}\n")
            if r == "MB":
                self._put(os.path.join(d, "bandwidth_gran"), f"{mb_gran}\n")
                self._put(os.path.join(d, "min_bandwidth"), f"{mb_min}\n")
            else:
                self._put(os.path.join(d, "cbm_mask"), f"{cbm}\n")
                self._put(os.path.join(d, "min_cbm_bits"), "1\n")
        if mon:
            os.mkdir(os.path.join(info, "L3_MON"))
            self._put(os.path.join(info, "L3_MON", "mon_features"), "llc_occupancy\n")
        self._make_group(self.root, ctrl=True, tasks="1\n77\n")

    # --- the kernel's side
    @staticmethod
    def _put(path, text):
        with open(path, "w") as f:
            f.write(text)

    def _make_group(self, path, ctrl, tasks=""):
        os.makedirs(path, exist_ok=True)
        self._put(os.path.join(path, "tasks"), tasks)
        os.mkdir(os.path.join(path, "mon_data"))
        if ctrl:
            self._render(path, {r: {d: (100 if r == "MB" else self.cbm) for d in self.domains}
                                for r in self.resources})
            if self.mon_ok:
                os.mkdir(os.path.join(path, "mon_groups"))

    def _render(self, path, table):
        w = max((len(r) for r in table), default=0)
        out = []
        for r in self.resources:
            if r in table:
                vals = ";".join(f"{d}={v:>3}" if r == "MB" else f"{d}={v:x}"
                                for d, v in sorted(table[r].items()))
                out.append(f"{r:>{w}}:{vals}\n")
        self._put(os.path.join(path, "schemata"), "".join(out))

    def _fail(self, code, status):
        self._put(os.path.join(self.root, "info", "last_cmd_status"), status + "\n")
        raise OSError(code, os.strerror(code))

    def ctrl_groups(self):
        return [self.root] + [os.path.join(self.root, n) for n in os.listdir(self.root)
                              if n not in ("info", "mon_groups", "mon_data") and
                              os.path.isdir(os.path.join(self.root, n))]

    def _kind(self, path):
        parent = os.path.dirname(path)
        if path == self.root or parent == self.root:
            return "ctrl"
        if os.path.basename(parent) == "mon_groups" and \
                os.path.dirname(parent) in self.ctrl_groups():
            return "mon"
        return None

    def tasks(self, path):
        with open(os.path.join(path, "tasks")) as f:
            return [int(x) for x in f.read().split()]

    def table(self, path):
        with open(os.path.join(path, "schemata")) as f:
            return {n: {int(d): v for d, v in doms.items()}
                    for n, doms in map(intelrdt.parse_line, f.read().splitlines())}

    # --- HostFS
    def mkdir(self, path):
        if os.path.exists(path):
            raise FileExistsError(errno.EEXIST, "File exists", path)
        kind = self._kind(path)
        if kind == "ctrl" and os.path.basename(path) not in ("info", "mon_groups",
                                                             "mon_data"):
            if len(self.ctrl_groups()) >= self.num_closids:
                self._fail(errno.ENOSPC, "Out of CLOSIDs")
            self._make_group(path, ctrl=True)
        elif kind == "mon":
            self._make_group(path, ctrl=False)
        else:
            raise PermissionError(errno.EPERM, "Operation not permitted", path)

    def rmdir(self, path):
        if not os.path.isdir(path):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        kind = self._kind(path)
        if path == self.root or kind is None:
            raise PermissionError(errno.EPERM, "Operation not permitted", path)
        if kind == "ctrl":  # its tasks (its MON groups' too) go back to the default group
            moved = self.tasks(path)
            self._put(os.path.join(self.root, "tasks"),
                      "".join(f"{p}\n" for p in self.tasks(self.root) + moved))
        shutil.rmtree(path)

    def write(self, path, data):
        self.writes.append((os.path.relpath(path, self.root), data))
        group, name = os.path.split(path)
        kind = self._kind(group)
        if kind is None or not os.path.isdir(group):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        if name == "tasks":
            self._write_tasks(group, kind, data)
        elif name == "schemata" and kind == "ctrl":
            self._write_schemata(group, data)
        else:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        self._put(os.path.join(self.root, "info", "last_cmd_status"), "ok\n")

    def _write_tasks(self, group, kind, data):
        try:
            pid = int(data.strip())
        except ValueError:
            self._fail(errno.EINVAL, "Task list parsing error")
        if kind == "mon":
            if pid not in self.tasks(os.path.dirname(os.path.dirname(group))):
                self._fail(errno.EINVAL, "Can't move task to different control group")
            self._put(os.path.join(group, "tasks"), "".join(
                f"{p}\n" for p in self.tasks(group) + [pid]))
            return
        for g in self.ctrl_groups():  # leaves its old CTRL_MON group and MON group
            self._put(os.path.join(g, "tasks"),
                      "".join(f"{p}\n" for p in self.tasks(g) if p != pid))
            monroot = os.path.join(g, "mon_groups")
            for m in (os.listdir(monroot) if os.path.isdir(monroot) else []):
                mg = os.path.join(monroot, m)
                self._put(os.path.join(mg, "tasks"),
                          "".join(f"{p}\n" for p in self.tasks(mg) if p != pid))
        self._put(os.path.join(group, "tasks"),
                  "".join(f"{p}\n" for p in self.tasks(group) + [pid]))

    def _write_schemata(self, group, data):
        if not data.endswith("\n"):
            self._fail(errno.EINVAL, "Line must end with a newline")
        table = {n: {d: int(v, 10 if n == "MB" else 16) for d, v in doms.items()}
                 for n, doms in self.table(group).items()}
        for line in data[:-1].split("\n"):
            try:
                res, doms = intelrdt.parse_line(line)
            except ValueError:
                self._fail(errno.EINVAL, f"Missing ':' in line: {line}")
            if res not in self.resources:
                self._fail(errno.EINVAL, f"Unknown or unsupported resource name '{res}'")
            for d, v in doms.items():
                if int(d) not in self.domains:
                    self._fail(errno.EINVAL, f"Unknown domain ID {d}")
                if res == "MB":
                    bw = int(v)
                    if not self.mb_min <= bw <= 100:
                        self._fail(errno.EINVAL, f"MB value {bw} out of range")
                    table[res][int(d)] = -(-bw // self.mb_gran) * self.mb_gran
                else:
                    m = int(v, 16)
                    low = m & -m
                    if m == 0 or m & ~self.cbm or (m + low) & m:
                        self._fail(errno.EINVAL, f"Non-contiguous bitmask {v}")
                    table[res][int(d)] = m
        self._render(group, table)


@pytest.fixture
def kernel(tmp_path):
    return FakeResctrl(tmp_path / "resctrl")


def mgr(kernel, rdt, cid=CID, **kw):
    return intelrdt.Manager(rdt, cid, root=kernel.root, fs=kernel, mba_mbps=False, **kw)


def made(kernel, rdt, cid=CID):
    m = mgr(kernel, rdt, cid)
    m.validate()
    m.apply()
    return m


def schemata_writes(kernel):
    return [d for p, d in kernel.writes if p.endswith("schemata")]


# --- where resctrl is

def test_mount_point_and_options_from_mountinfo(tmp_path):
    mi = tmp_path / "mountinfo"
    mi.write_text("22 1 0:21 / /proc rw - proc proc rw\n"
                  "40 22 0:35 / /sys/fs/res\\040ctrl rw,relatime - resctrl resctrl "
                  "rw,mba_MBps\n")
    assert intelrdt.resctrl_mount_info(str(mi)) == ("/sys/fs/res ctrl", "rw,mba_MBps")
    assert intelrdt.resctrl_mount(str(mi)) == "/sys/fs/res ctrl"
    mi.write_text("22 1 0:21 / /proc rw - proc proc rw\n")
    assert intelrdt.resctrl_mount(str(mi)) is None


def test_no_resctrl_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(intelrdt, "resctrl_mount_info", lambda *a: None)
    m = intelrdt.Manager({"l3CacheSchema": "L3:0=f"}, CID)
    with pytest.raises(ConfigError) as e:
        m.validate()
    assert e.value.path == "linux.intelRdt" and "not supported or enabled" in str(e.value)


# --- the default group: the container id

def test_default_group_is_the_container_id(kernel):
    m = made(kernel, {"l3CacheSchema": "L3:0=7f0;1=1f", "memBwSchema": "MB:0=20;1=70"})
    g = os.path.join(kernel.root, CID)
    assert m.path == g and m.created
    assert schemata_writes(kernel) == ["L3:0=7f0;1=1f\nMB:0=20;1=70\n"]
    assert kernel.table(g) == {"L3": {0: "7f0", 1: "1f"}, "MB": {0: "20", 1: "70"}}
    m.add_pid(4242)
    assert kernel.tasks(g) == [4242]
    m.remove()
    assert not os.path.exists(g)
    assert 4242 in kernel.tasks(kernel.root)


def test_lines_in_the_spec_order_in_one_write(tmp_path):
    kernel = FakeResctrl(tmp_path / "r", l2=True)
    m = made(kernel, {"l3CacheSchema": "L3:0=7f0", "memBwSchema": "MB:0=20",
                      "schemata": ["L2:0=f;1=f", "", "MB:0=50"]})
    assert schemata_writes(kernel) == ["L3:0=7f0\nMB:0=20\nL2:0=f;1=f\nMB:0=50\n"]
    t = kernel.table(m.path)
    assert t["MB"][0] == "50" and t["MB"][1] == "100" and t["L2"] == {0: "f", 1: "f"}


def test_no_schemata_asked_writes_none(kernel):
    m = made(kernel, {})
    assert m.created and schemata_writes(kernel) == []
    m.add_pid(9)
    assert kernel.tasks(m.path) == [9]


def test_existing_container_id_group_is_joined_and_kept(kernel):
    """runc's rule for a group named after the container that already exists: join
    it, write its schemata, leave it on delete (ocirt did not make it)."""
    kernel.mkdir(os.path.join(kernel.root, CID))
    m = made(kernel, {"l3CacheSchema": "L3:0=3"})
    assert not m.created and schemata_writes(kernel) == ["L3:0=3\n"]
    m.remove()
    assert os.path.isdir(os.path.join(kernel.root, CID))


# --- closID

def test_closid_group_is_made_and_not_removed_on_delete(kernel):
    m = made(kernel, {"closID": "gold", "schemata": ["L3:0=ff;1=ff"]})
    g = os.path.join(kernel.root, "gold")
    assert m.path == g and m.created and kernel.table(g)["L3"] == {0: "ff", 1: "ff"}
    m.add_pid(5)
    m.remove()  # spec: a closID group stays
    assert os.path.isdir(g)
    m2 = mgr(kernel, {"closID": "gold2", "l3CacheSchema": "L3:0=1"})
    m2.apply()
    m2.remove(force=True)  # a create that fails takes back what it made
    assert not os.path.exists(os.path.join(kernel.root, "gold2"))


def test_existing_closid_group_with_the_same_schemata_is_joined(kernel):
    g = os.path.join(kernel.root, "shared")
    kernel.mkdir(g)
    kernel.write(os.path.join(g, "schemata"), "L3:0=f0;1=f\nMB:0=30\n")
    kernel.writes.clear()
    # written differently: leading zeros, a bandwidth the kernel rounds up to 30
    m = made(kernel, {"closID": "shared", "l3CacheSchema": "L3:0=0f0",
                      "memBwSchema": "MB:0=25"})
    assert not m.created and schemata_writes(kernel) == []
    m.add_pid(31)
    assert kernel.tasks(g) == [31]
    m.remove()
    assert os.path.isdir(g)


@pytest.mark.parametrize("rdt,field", [
    ({"l3CacheSchema": "L3:0=ff"}, "linux.intelRdt.l3CacheSchema"),
    ({"memBwSchema": "MB:1=50"}, "linux.intelRdt.memBwSchema"),
    ({"schemata": ["L3:0=f0", "MB:0=20"]}, "linux.intelRdt.schemata[1]"),
])
def test_existing_closid_group_with_other_schemata_is_refused(kernel, rdt, field):
    g = os.path.join(kernel.root, "shared")
    kernel.mkdir(g)
    kernel.write(os.path.join(g, "schemata"), "L3:0=f0\nMB:0=30\n")
    before = open(os.path.join(g, "schemata")).read()
    kernel.writes.clear()
    m = mgr(kernel, dict(rdt, closID="shared"))
    with pytest.raises(ConfigError) as e:
        m.validate()
    assert e.value.path == field and "shared" in str(e.value)
    assert kernel.writes == [] and open(os.path.join(g, "schemata")).read() == before


def test_closid_without_schemata_must_exist(kernel):
    m = mgr(kernel, {"closID": "pre"})
    with pytest.raises(ConfigError) as e:
        m.validate()
    assert e.value.path == "linux.intelRdt.closID" and "does not exist" in str(e.value)
    assert not os.path.exists(os.path.join(kernel.root, "pre"))
    kernel.mkdir(os.path.join(kernel.root, "pre"))
    m = made(kernel, {"closID": "pre"})
    m.add_pid(12)
    assert kernel.tasks(os.path.join(kernel.root, "pre")) == [12]
    assert not m.created and schemata_writes(kernel) == []


def test_closid_slash_is_the_default_group(kernel):
    m = made(kernel, {"closID": "/", "l3CacheSchema": "L3:0=7ff"})
    assert m.path == kernel.root and not m.created and schemata_writes(kernel) == []
    m.add_pid(77)
    m.remove()
    assert os.path.isdir(kernel.root)
    with pytest.raises(ConfigError) as e:
        mgr(kernel, {"closID": "/", "l3CacheSchema": "L3:0=f"}).validate()
    assert e.value.path == "linux.intelRdt.l3CacheSchema"


@pytest.mark.parametrize("clos", [".", "..", "a/b", "/x", "x/", "info", "mon_groups",
                                  "mon_data"])
def test_invalid_closid(kernel, clos):
    with pytest.raises(ConfigError) as e:
        mgr(kernel, {"closID": clos, "l3CacheSchema": "L3:0=f"}).validate()
    assert e.value.path == "linux.intelRdt.closID"
    assert sorted(os.listdir(kernel.root)) == ["info", "mon_data", "mon_groups",
                                               "schemata", "tasks"]


def test_container_id_that_is_no_group_name(kernel):
    with pytest.raises(ConfigError) as e:
        mgr(kernel, {}, cid="info").validate()
    assert e.value.path == "linux.intelRdt.closID"


# --- the config's form and the host's resources

@pytest.mark.parametrize("rdt,field,words", [
    ({"closID": 5}, "linux.intelRdt.closID", "string"),
    ({"l3CacheSchema": ["L3:0=f"]}, "linux.intelRdt.l3CacheSchema", "string"),
    ({"schemata": "L3:0=f"}, "linux.intelRdt.schemata", "array"),
    ({"schemata": ["L3:0=f", 3]}, "linux.intelRdt.schemata", "array"),
    ({"enableMonitoring": "yes"}, "linux.intelRdt.enableMonitoring", "boolean"),
    ({"memBwSchema": "L3:0=f"}, "linux.intelRdt.memBwSchema", "MB:"),
    ({"l3CacheSchema": "L3:0=f\nMB:0=10"}, "linux.intelRdt.l3CacheSchema", "newline"),
    ({"schemata": ["L3:0=f", "MB:0=10\n"]}, "linux.intelRdt.schemata[1]", "newline"),
    ({"schemata": ["L3=0=f"]}, "linux.intelRdt.schemata[0]", "schemata line"),
    ({"l3CacheSchema": "L3:"}, "linux.intelRdt.l3CacheSchema", "schemata line"),
])
def test_malformed_config(kernel, rdt, field, words):
    with pytest.raises(ConfigError) as e:
        mgr(kernel, rdt).validate()
    assert e.value.path == field and words in str(e.value)


@pytest.mark.parametrize("host,rdt,field,words", [
    ({"l3": False}, {"l3CacheSchema": "L3:0=f"}, "linux.intelRdt.l3CacheSchema",
     "Intel RDT/CAT"),
    ({"mb": False}, {"memBwSchema": "MB:0=50"}, "linux.intelRdt.memBwSchema",
     "Intel RDT/MBA"),
    ({"l3": False}, {"schemata": ["MB:0=50", "L3:0=f"]}, "linux.intelRdt.schemata[1]",
     "info/L3"),
    ({}, {"schemata": ["L2:0=f"]}, "linux.intelRdt.schemata[0]", "info/L2"),
    ({"mon": False}, {"enableMonitoring": True}, "linux.intelRdt.enableMonitoring",
     "monitoring"),
])
def test_resource_the_host_lacks_is_refused(tmp_path, host, rdt, field, words):
    kernel = FakeResctrl(tmp_path / "r", **host)
    with pytest.raises(ConfigError) as e:
        mgr(kernel, rdt).validate()
    assert e.value.path == field and words in str(e.value)
    assert [n for n in os.listdir(kernel.root) if n not in
            ("info", "mon_data", "mon_groups", "schemata", "tasks")] == []


# --- monitoring

@pytest.mark.parametrize("key", ["enableMonitoring", "enableCMT", "enableMBM"])
def test_monitoring_group_per_container(kernel, key):
    # enableCMT/enableMBM (spec 1.1, 1.2) ask for the MON group 1.3 calls enableMonitoring
    m = made(kernel, {key: True, "l3CacheSchema": "L3:0=f"})
    mon = os.path.join(kernel.root, CID, "mon_groups", CID)
    assert m.mon == mon and os.path.isdir(mon)
    m.add_pid(600)  # CTRL_MON first: the fake kernel refuses a MON group first
    assert kernel.tasks(m.path) == [600] and kernel.tasks(mon) == [600]
    st = m.to_state()
    intelrdt.remove_state(st, kernel)
    assert not os.path.exists(m.path)


def test_monitoring_in_a_shared_closid(kernel):
    kernel.mkdir(os.path.join(kernel.root, "pre"))
    m = made(kernel, {"closID": "pre", "enableMonitoring": True})
    m.add_pid(601)
    mon = os.path.join(kernel.root, "pre", "mon_groups", CID)
    assert kernel.tasks(mon) == [601]
    intelrdt.remove_state(m.to_state(), kernel)  # the MON group goes, the CLOS stays
    assert not os.path.exists(mon) and os.path.isdir(os.path.join(kernel.root, "pre"))


def test_monitoring_group_that_exists_is_refused(kernel):
    kernel.mkdir(os.path.join(kernel.root, "pre"))
    kernel.mkdir(os.path.join(kernel.root, "pre", "mon_groups", CID))
    with pytest.raises(ConfigError) as e:
        mgr(kernel, {"closID": "pre", "enableMonitoring": True}).validate()
    assert e.value.path == "linux.intelRdt.enableMonitoring"


# --- failures leave nothing behind

def test_schemata_the_kernel_refuses(kernel):
    m = mgr(kernel, {"l3CacheSchema": "L3:0=5"})  # not contiguous
    m.validate()
    with pytest.raises(OcirtError) as e:
        m.apply()
    assert "linux.intelRdt" in str(e.value) and "Non-contiguous bitmask" in str(e.value)
    assert not os.path.exists(os.path.join(kernel.root, CID))


def test_out_of_closids(tmp_path):
    kernel = FakeResctrl(tmp_path / "r", num_closids=2)
    kernel.mkdir(os.path.join(kernel.root, "other"))
    m = mgr(kernel, {"l3CacheSchema": "L3:0=f"})
    m.validate()
    with pytest.raises(OcirtError) as e:
        m.apply()
    assert "Out of CLOSIDs" in str(e.value)
    assert not os.path.exists(os.path.join(kernel.root, CID))


def test_failed_mon_group_takes_the_group_back(kernel, monkeypatch):
    m = mgr(kernel, {"enableMonitoring": True, "l3CacheSchema": "L3:0=f"})
    m.validate()
    real = kernel.mkdir

    def mkdir(path):
        if "mon_groups" in path:
            kernel._fail(errno.ENOSPC, "Out of RMIDs")
        real(path)
    monkeypatch.setattr(kernel, "mkdir", mkdir)
    with pytest.raises(OcirtError) as e:
        m.apply()
    assert "Out of RMIDs" in str(e.value) and not os.path.exists(m.path)


# --- state and update

def test_state_round_trip_and_update(kernel):
    m = made(kernel, {"l3CacheSchema": "L3:0=7f0;1=1f", "memBwSchema": "MB:0=20;1=70",
                      "schemata": ["MB:1=40"]})
    st = m.to_state()
    kernel.writes.clear()
    u = intelrdt.update_container(st, CID, "L3:0=f;1=f", None, fs=kernel)
    old = u.update("L3:0=f;1=f", None)
    assert schemata_writes(kernel) == ["L3:0=f;1=f\nMB:0=20;1=70\nMB:1=40\n"]
    assert kernel.table(m.path)["L3"] == {0: "f", 1: "f"}
    assert u.to_state()["l3CacheSchema"] == "L3:0=f;1=f"
    u.update(None, "MB:0=60")
    assert kernel.table(m.path)["MB"] == {0: "60", 1: "40"}
    u.restore(old)  # what update() does when the cgroup part fails
    assert kernel.table(m.path)["L3"] == {0: "7f0", 1: "1f"}
    intelrdt.Manager.from_state(u.to_state(), kernel).remove()
    assert not os.path.exists(m.path)


def test_update_refusals(tmp_path):
    kernel = FakeResctrl(tmp_path / "r", mb=False)
    st = made(kernel, {"l3CacheSchema": "L3:0=f"}).to_state()
    assert intelrdt.update_container(st, CID, None, None, fs=kernel) is None
    with pytest.raises(OcirtError, match="Intel RDT/MBA: memory bandwidth schema is not "
                                         "enabled"):
        intelrdt.update_container(st, CID, None, "MB:0=20", fs=kernel)
    with pytest.raises(OcirtError, match="non-existent Intel RDT configuration"):
        intelrdt.update_container(None, CID, "L3:0=f", None, fs=kernel, root=kernel.root)
    u = intelrdt.update_container(st, CID, "L3:0=3", None, fs=kernel)
    with pytest.raises(OcirtError, match="--l3-cache-schema"):
        u.update("L3:0=3\nMB:0=1", None)
    kernel.writes.clear()
    with pytest.raises(OcirtError, match="Non-contiguous"):
        u.update("L3:0=5", None)
    assert u.l3 == "L3:0=f"  # a refused update keeps the old line


def test_update_without_resctrl(monkeypatch):
    monkeypatch.setattr(intelrdt, "resctrl_mount_info", lambda *a: None)
    with pytest.raises(OcirtError, match="Intel RDT/CAT: l3 cache schema is not enabled"):
        intelrdt.update_container(None, CID, "L3:0=f", None)


def test_the_fast_front_leaves_delete_to_python():
    """The C front deletes plain containers itself; one with a resctrl group must
    come to Python (delete.destroy removes the group)."""
    st = state.State(CID, "/b", "/b/r", "2024-01-01T00:00:00Z")
    assert state.front_policy(st)["delete"] is True
    st.intelrdt = {"root": "/sys/fs/resctrl", "path": "/sys/fs/resctrl/x"}
    assert state.front_policy(st)["delete"] is False


def test_exec_pid_joins_the_group_and_mon_group(kernel):
    m = made(kernel, {"closID": "gold", "l3CacheSchema": "L3:0=f", "enableMonitoring": True})
    m.add_pid(700)
    intelrdt.add_exec_pid(m.to_state(), 701, kernel)
    assert kernel.tasks(m.path) == [700, 701] and kernel.tasks(m.mon) == [700, 701]
