"""Idmapped mounts (config.md mounts: uidMappings, gidMappings; the idmap and ridmap
options): the ids a file shows through the mount, with and without a user
namespace, recursion, the container's own mappings, and refusals."""
import os
import subprocess

import pytest

from helpers import add_userns, assert_error

MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]
OVERFLOW = open("/proc/sys/kernel/overflowuid").read().strip()


@pytest.fixture
def src(tmp_path):
    """source/ with foo.txt owned 1:1 and sub/ where a host bind mount is put
    (its bar.txt owned 100:211)."""
    s = tmp_path / "source"
    (s / "sub").mkdir(parents=True)
    (s / "foo.txt").touch()
    os.chown(s / "foo.txt", 1, 1)
    other = tmp_path / "other"
    other.mkdir()
    (other / "bar.txt").touch()
    os.chown(other / "bar.txt", 100, 211)
    os.chmod(tmp_path, 0o755)
    return s, other


def _bundle(ocirt, script, mount, userns=False):
    b = ocirt.bundle(["sh", "-c", script])
    b.config["mounts"].append(mount)
    if userns:
        add_userns(b)
    return b.write()


def test_explicit_mapping_without_userns(ocirt, src):
    """No user namespace: the host ids seen through the mount are the mapped ones; an
    unmapped writer (root) cannot create files there (EOVERFLOW)."""
    s, _ = src
    b = _bundle(ocirt, "stat -c =%u:%g= /tmp/m/foo.txt; touch /tmp/m/new 2>&1; echo rc=$?",
                {"source": str(s), "destination": "/tmp/m", "options": ["bind"],
                 "uidMappings": MAP, "gidMappings": MAP})
    out = ocirt.run(ocirt.new_id(), b).ok().stdout
    assert "=100001:100001=" in out
    assert "Value too large" in out and "rc=1" in out
    assert not (s / "new").exists()


def test_explicit_mapping_with_userns(ocirt, src):
    """With the container's user namespace mapping the same range: files show their
    own ids inside, and a file made there is owned by host uid 0."""
    s, _ = src
    b = _bundle(ocirt, "stat -c =%u:%g= /tmp/m/foo.txt; touch /tmp/m/new && "
                "stat -c =%u:%g= /tmp/m/new",
                {"source": str(s), "destination": "/tmp/m", "options": ["bind"],
                 "uidMappings": MAP, "gidMappings": MAP}, userns=True)
    out = ocirt.run(ocirt.new_id(), b).ok().stdout.split()
    assert out == ["=1:1=", "=0:0="]
    st = os.stat(s / "new")
    assert (st.st_uid, st.st_gid) == (0, 0)


def _host_bind(other, target):
    subprocess.run(["mount", "--bind", str(other), str(target)], check=True)


@pytest.mark.parametrize("opt,sub_ids", [("idmap", f"={OVERFLOW}:{OVERFLOW}="),
                                         ("ridmap", "=100:211=")])
def test_implied_mapping_and_recursion(ocirt, src, opt, sub_ids):
    """`idmap` with no mappings takes the container's; only `ridmap` idmaps the
    mounts below the source too (else they stay unmapped: overflow ids inside)."""
    s, other = src
    _host_bind(other, s / "sub")
    try:
        b = _bundle(ocirt, "stat -c =%u:%g= /tmp/m/foo.txt /tmp/m/sub/bar.txt",
                    {"source": str(s), "destination": "/tmp/m", "options": ["rbind", opt]},
                    userns=True)
        out = ocirt.run(ocirt.new_id(), b).ok().stdout.split()
    finally:
        subprocess.run(["umount", "-l", str(s / "sub")], check=True)
    assert out == ["=1:1=", sub_ids]


def test_implied_mapping_of_a_joined_user_namespace(ocirt, src):
    s, _ = src
    a = add_userns(ocirt.bundle(["sleep", "600"])).write()
    ca = ocirt.new_id()
    ocirt.create(ca, a).ok()
    pid = ocirt.state(ca)["pid"]
    b = ocirt.bundle(["stat", "-c", "=%u:%g=", "/tmp/m/foo.txt"])
    b.linux["namespaces"].append({"type": "user", "path": f"/proc/{pid}/ns/user"})
    b.config["mounts"] = [m for m in b.config["mounts"]
                          if m.get("type") not in ("cgroup", "sysfs")]
    b.config["mounts"].append({"source": str(s), "destination": "/tmp/m",
                               "options": ["rbind", "idmap"]})
    b.write()
    assert ocirt.run(ocirt.new_id(), b).ok().stdout.split() == ["=1:1="]
    ocirt.delete(ca, "--force").ok()


def test_many_idmapped_mounts_with_a_low_nofile_limit(ocirt, src):
    """20 idmapped mounts and RLIMIT_NOFILE 20: the set-up's fds are gone by the time
    the limit applies (runc's "mount source fds are cleaned up")."""
    s, _ = src
    b = ocirt.bundle(["stat", "-c", "=%u:%g=", "/tmp/m5/foo.txt"])
    for i in range(20):
        b.config["mounts"].append({"source": str(s), "destination": f"/tmp/m{i}",
                                   "options": ["bind"], "uidMappings": MAP,
                                   "gidMappings": MAP})
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 20, "hard": 20}]
    b.write()
    assert ocirt.run(ocirt.new_id(), b).ok().stdout.split() == ["=100001:100001="]


def test_idmap_of_a_non_bind_mount_is_refused(ocirt):
    b = ocirt.bundle(["true"])
    b.config["mounts"].append({"source": "tmpfs", "destination": "/tmp/m", "type": "tmpfs",
                               "uidMappings": MAP, "gidMappings": MAP})
    b.write()
    assert_error(ocirt.create(ocirt.new_id(), b), f"mounts[{len(b.config['mounts']) - 1}]",
                 "bind mounts")
    assert ocirt.state_dirs() == []


def test_implied_idmap_without_a_user_namespace_is_refused(ocirt, src):
    s, _ = src
    b = ocirt.bundle(["true"])
    b.config["mounts"].append({"source": str(s), "destination": "/tmp/m",
                               "options": ["rbind", "idmap"]})
    b.write()
    assert_error(ocirt.create(ocirt.new_id(), b), "mounts[", "no user namespace")
    assert ocirt.state_dirs() == []


@pytest.mark.parametrize("userns", [False, True])
def test_idmapped_source_inside_the_rootfs_sees_earlier_mounts(ocirt, src, userns):
    """runc's "mount order, container idmap source": an idmapped bind whose source is a
    path of the rootfs that an earlier mount made is cloned once that mount exists (in
    a new user namespace, by the runtime in init's mount namespace)."""
    s, _ = src
    b = ocirt.bundle(["stat", "-c", "=%u:%g=", "/final/foo.txt"])
    want = "=100001:100001="
    if userns:
        add_userns(b, 200000)
        want = f"={OVERFLOW}:{OVERFLOW}="  # 100001 is not mapped in 200000+
    os.makedirs(os.path.join(b.rootfs, "mnt"), exist_ok=True)  # the rootfs has one
    os.makedirs(os.path.join(b.rootfs, "final"))
    b.config["mounts"].append({"source": str(s), "destination": "/mnt", "options": ["rbind"]})
    b.config["mounts"].append({"source": b.rootfs + "/mnt", "destination": "/final",
                               "options": ["rbind"], "uidMappings": MAP,
                               "gidMappings": MAP})
    b.write()
    assert ocirt.run(ocirt.new_id(), b).ok().stdout.split() == [want]
    if userns:  # with the container's own mapping through the idmap: its ids inside
        b.config["mounts"][-1]["uidMappings"] = b.linux["uidMappings"]
        b.config["mounts"][-1]["gidMappings"] = b.linux["gidMappings"]
        b.write()
        assert ocirt.run(ocirt.new_id(), b).ok().stdout.split() == ["=1:1="]
