"""config-linux.md, Namespaces: new ones are really new, listed paths are really
joined, unlisted types are inherited, and bad entries are errors."""
import os

import pytest

from helpers import (Holder, add_userns, assert_error, mountinfo_lines, ns_inode,
                     set_namespaces)

SLEEP = ["sleep", "600"]
# OCI type -> /proc/<pid>/ns name
NS = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt",
      "cgroup": "cgroup", "time": "time", "user": "user"}
DEFAULT = ["pid", "network", "ipc", "uts", "mount", "cgroup"]


def _created(ocirt, b):
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    return cid, ocirt.state(cid)["pid"]


def _kernel_has(name):
    if not os.path.exists(f"/proc/self/ns/{name}"):
        pytest.skip(f"this kernel has no {name} namespaces (/proc/self/ns/{name} is missing)")


@pytest.fixture(scope="module")
def created_default(module_ocirt):
    """One created container of the default config: (id, init pid)."""
    b = module_ocirt.bundle(SLEEP)
    set_namespaces(b.config, DEFAULT)
    b.write()
    cid, pid = _created(module_ocirt, b)
    yield cid, pid
    module_ocirt.delete(cid, "--force").ok()


def test_default_spec_has_a_cgroup_namespace_on_pure_v2_only(ocirt):
    """As runc's spec: on a v1 or hybrid host the container sees its cgroup paths."""
    from helpers import default_spec
    with open("/proc/self/mountinfo") as f:
        v1 = any(line.partition(" - ")[2].startswith("cgroup ") for line in f)
    types = [n["type"] for n in default_spec()["linux"]["namespaces"]]
    assert ("cgroup" in types) == (not v1), types


@pytest.mark.parametrize("typ", DEFAULT)
def test_new_namespace(created_default, typ):
    """No path: the runtime MUST create a new namespace of that type."""
    _cid, pid = created_default
    assert ns_inode(pid, NS[typ]) != ns_inode("self", NS[typ]), f"{typ} namespace is the host's"


def test_new_time_namespace(ocirt):
    _kernel_has("time")
    b = ocirt.bundle(SLEEP)
    b.linux["namespaces"].append({"type": "time"})
    b.write()
    cid, pid = _created(ocirt, b)
    assert ns_inode(pid, "time") != ns_inode("self", "time")
    ocirt.delete(cid, "--force").ok()


@pytest.mark.parametrize("userns", [False, True])
def test_time_namespace_offsets(ocirt, userns):
    """timeOffsets reach the new time namespace, with a user namespace too (the
    offsets are written by the intermediate, root of that namespace); null offsets
    are none (Go's reading of null)."""
    _kernel_has("time")
    b = ocirt.bundle(["cat", "/proc/self/timens_offsets"])
    b.linux["namespaces"].append({"type": "time"})
    b.linux["timeOffsets"] = {"monotonic": {"secs": 7881, "nanosecs": 2718281},
                              "boottime": {"secs": 1337, "nanosecs": 3141519}}
    if userns:
        add_userns(b)
    b.write()
    lines = [ln.split() for ln in ocirt.run(ocirt.new_id(), b).ok().lines]
    assert ["monotonic", "7881", "2718281"] in lines and ["boottime", "1337", "3141519"] in lines
    b.linux["timeOffsets"] = None
    b.write()
    lines = [ln.split() for ln in ocirt.run(ocirt.new_id(), b).ok().lines]
    assert ["monotonic", "0", "0"] in lines


def test_new_pid_namespace_makes_pid_1(ocirt, bundle):
    r = ocirt.run_sh(bundle, "echo $$; ls /proc | grep -c '^[0-9]'")
    pid, count = r.ok().lines
    assert pid == "1"
    assert int(count) <= 3, "the container sees host processes"


def test_new_user_namespace_with_mappings(ocirt):
    _kernel_has("user")
    b = ocirt.bundle(SLEEP)
    b.linux["namespaces"].append({"type": "user"})
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    b.write()
    cid, pid = _created(ocirt, b)
    assert ns_inode(pid, "user") != ns_inode("self", "user")
    with open(f"/proc/{pid}/uid_map") as f:
        assert f.read().split() == ["0", "100000", "65536"]
    with open(f"/proc/{pid}/gid_map") as f:
        assert f.read().split() == ["0", "200000", "65536"]
    # seen from the host, the container's root is the mapped uid
    with open(f"/proc/{pid}/status") as f:
        uids = [line.split()[1:] for line in f if line.startswith(("Uid:", "Gid:"))]
    assert uids[0][0] == "100000" and uids[1][0] == "200000"
    ocirt.delete(cid, "--force").ok()


def test_user_namespace_process_sees_mapped_ids(ocirt, bundle):
    _kernel_has("user")
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    r = ocirt.run_sh(bundle, "id -u; id -g; cat /proc/self/uid_map")
    lines = r.ok().lines
    assert lines[0] == "0" and lines[1] == "0"
    assert lines[2].split() == ["0", "100000", "65536"]


def test_join_another_containers_user_namespace(ocirt):
    """linux.namespaces user with the path of another container's: no mappings of its
    own; the process is root of that namespace (its files are made as the mapped
    root, not refused with EOVERFLOW), device nodes are bound, not made."""
    _kernel_has("user")
    a = add_userns(ocirt.bundle(SLEEP), 100000, 200000, mounts=False).write()
    ca, pa = _created(ocirt, a)
    b = ocirt.bundle(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; "
                      "touch /tmp/f && stat -c %u /tmp/f"])
    b.linux["namespaces"].append({"type": "user", "path": f"/proc/{pa}/ns/user"})
    b.config["root"]["readonly"] = False
    b.write()
    r = ocirt.run(ocirt.new_id(), b).ok()
    lines = r.lines
    assert lines[0].split() == ["0", "100000", "65536"]
    assert lines[1].split() == ["0", "200000", "65536"]
    assert lines[2:] == ["0", "0"]
    ocirt.delete(ca, "--force").ok()


def test_join_a_user_namespace_and_a_network_namespace_it_does_not_own(ocirt):
    """runc's "wrong userns owner": the network namespace joined is the host's child,
    not the joined user namespace's; the runtime joins it with the host's privileges
    first, then the user namespace."""
    _kernel_has("user")
    a = add_userns(ocirt.bundle(SLEEP)).write()
    ca, pa = _created(ocirt, a)
    h = Holder("--net")
    try:
        b = ocirt.bundle(SLEEP)
        b.linux["namespaces"] = [n for n in b.linux["namespaces"] if n["type"] != "network"]
        b.linux["namespaces"] += [{"type": "user", "path": f"/proc/{pa}/ns/user"},
                                  {"type": "network", "path": h.path("net")}]
        b.config["mounts"] = [m for m in b.config["mounts"]
                              if m.get("type") not in ("cgroup", "sysfs")]
        b.write()
        cb, pb = _created(ocirt, b)
        assert ns_inode(pb, "net") == h.inode("net")
        assert ns_inode(pb, "user") == ns_inode(pa, "user")
        ocirt.start(cb).ok()  # exec joins them the same way
        r = ocirt("exec", cb, "readlink", "/proc/self/ns/net").ok()
        assert r.stdout.strip() == f"net:[{h.inode('net')}]"
        ocirt.delete(cb, "--force").ok()
    finally:
        h.close()
    ocirt.delete(ca, "--force").ok()


def test_join_another_containers_time_namespace(ocirt):
    _kernel_has("time")
    a = ocirt.bundle(SLEEP)
    a.linux["namespaces"].append({"type": "time"})
    a.linux["timeOffsets"] = {"boottime": {"secs": 86400 * 365}}
    a.write()
    ca, pa = _created(ocirt, a)
    b = ocirt.bundle(["cut", "-d.", "-f1", "/proc/uptime"])
    b.linux["namespaces"].append({"type": "time", "path": f"/proc/{pa}/ns/time"})
    b.write()
    r = ocirt.run(ocirt.new_id(), b).ok()
    assert int(r.stdout) > 86400 * 365, "the joined time namespace's offset is not seen"
    b.linux["timeOffsets"] = {"boottime": {"secs": 5}}
    b.write()
    assert_error(ocirt.run(ocirt.new_id(), b), "linux.timeOffsets", "joined")
    ocirt.delete(ca, "--force").ok()


@pytest.mark.parametrize("typ", ["pid", "network", "ipc", "uts", "cgroup"])
def test_unlisted_namespace_is_inherited(ocirt, typ):
    """A type not in `namespaces`: the container MUST inherit the runtime's."""
    b = ocirt.bundle(SLEEP)
    set_namespaces(b.config, [t for t in DEFAULT if t != typ])
    if typ == "uts":
        b.config.pop("hostname", None)
    b.write()
    cid, pid = _created(ocirt, b)
    assert ns_inode(pid, NS[typ]) == ns_inode("self", NS[typ])
    ocirt.delete(cid, "--force").ok()


@pytest.mark.parametrize("typ,flag", [("network", "--net"), ("uts", "--uts"),
                                      ("ipc", "--ipc"), ("cgroup", "--cgroup")])
def test_join_namespace_by_path(ocirt, typ, flag):
    """With a path: the runtime MUST place the container process in that namespace."""
    h = Holder(flag)
    try:
        assert h.inode(NS[typ]) != ns_inode("self", NS[typ])
        b = ocirt.bundle(SLEEP)
        set_namespaces(b.config, [(t, h.path(NS[t])) if t == typ else t for t in DEFAULT])
        if typ == "uts":
            b.config.pop("hostname", None)
        b.write()
        cid, pid = _created(ocirt, b)
        assert ns_inode(pid, NS[typ]) == h.inode(NS[typ])
        ocirt.start(cid).ok()
        assert ns_inode(pid, NS[typ]) == h.inode(NS[typ])
        ocirt.delete(cid, "--force").ok()
        assert os.path.exists(f"/proc/{h.pid}"), "the joined namespace's holder was killed"
    finally:
        h.close()


def test_joined_network_namespace_is_the_one_seen_inside(ocirt):
    """The container sees the joined netns (its lo got an mtu set from outside)."""
    h = Holder("--net")
    try:
        import subprocess
        subprocess.run(["nsenter", "-t", str(h.pid), "-n", "ip", "link", "set", "lo",
                        "mtu", "1234"], check=True, capture_output=True)
        b = ocirt.bundle()
        set_namespaces(b.config, [("network", h.path("net")) if t == "network" else t
                                  for t in DEFAULT])
        r = ocirt.run_sh(b, "cat /sys/class/net/lo/mtu")
        assert r.ok().stdout == "1234\n"
    finally:
        h.close()


def test_namespace_path_of_wrong_type(ocirt, bundle):
    """The runtime MUST generate an error if path is not a namespace of `type`."""
    h = Holder("--uts")
    try:
        set_namespaces(bundle.config, [("network", h.path("uts")) if t == "network" else t
                                       for t in DEFAULT])
        bundle.write()
        idx = DEFAULT.index("network")
        assert_error(ocirt.create(ocirt.new_id(), bundle), f"linux.namespaces[{idx}].path")
        assert ocirt.state_dirs() == []
    finally:
        h.close()


def test_namespace_path_not_a_namespace(ocirt, bundle):
    set_namespaces(bundle.config, [("ipc", "/etc/hostname") if t == "ipc" else t
                                   for t in DEFAULT])
    bundle.write()
    idx = DEFAULT.index("ipc")
    assert_error(ocirt.create(ocirt.new_id(), bundle), f"linux.namespaces[{idx}].path")


def test_namespace_path_missing(ocirt, bundle):
    set_namespaces(bundle.config, [("ipc", "/nonexistent/ns/ipc") if t == "ipc" else t
                                   for t in DEFAULT])
    bundle.write()
    idx = DEFAULT.index("ipc")
    assert_error(ocirt.create(ocirt.new_id(), bundle), f"linux.namespaces[{idx}].path")


def test_duplicate_namespace_type(ocirt, bundle):
    """Duplicated types: the runtime MUST generate an error."""
    bundle.linux["namespaces"].append({"type": "ipc"})
    bundle.write()
    assert_error(ocirt.create(ocirt.new_id(), bundle), "linux.namespaces")
    assert ocirt.state_dirs() == []


def test_no_mount_namespace_uses_chroot(ocirt, bundle):
    """Without a mount namespace the container inherits the host's; the rootfs is
    entered with chroot, and delete removes the mounts made under it on the host."""
    set_namespaces(bundle.config, [t for t in DEFAULT if t != "mount"])
    bundle.config["root"]["readonly"] = False
    r = ocirt.run_sh(bundle, "cat /etc/hostname; grep -c . /proc/self/mountinfo")
    assert r.ok().lines[0] == "rootfs"
    # the fixture checks that no mount under the bundle is left on the host


def test_no_mount_namespace_with_readonly_root(ocirt, bundle):
    """A read-only root without a mount namespace (runc's "host mount ns + hooks"): the
    rootfs is bound onto itself on the host and that bind made read-only; the host's
    own mounts keep their flags, and delete removes the bind. A createRuntime hook
    runs once."""
    set_namespaces(bundle.config, [t for t in DEFAULT if t != "mount"])
    assert bundle.config["root"]["readonly"] is True
    bundle.linux["maskedPaths"] = []
    bundle.linux["readonlyPaths"] = []
    marker = os.path.join(bundle.path, "hook-ran")
    bundle.config["hooks"] = {"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", f"echo x >> {marker}"]}]}

    def relevant():  # the mounts a wrong remount would hit (others' mounts come and go)
        return [line for line in mountinfo_lines()
                if line.split()[4] in ("/", "/tmp", "/dev/shm")]
    before = relevant()
    r = ocirt.run_sh(bundle, "touch /x 2>/dev/null && echo writable || echo ro")
    assert r.ok().stdout == "ro\n"
    assert relevant() == before
    with open(marker) as f:
        assert f.read() == "x\n"
    assert not any(bundle.rootfs in line for line in mountinfo_lines())
