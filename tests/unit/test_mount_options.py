"""ocirt.rootfs.mounts: option strings to mount(2) flags and data, and the calls
do_mount makes, recorded through the syscall seam (ocirt.syscalls.use(fake)):
no kernel mount is made here."""
import os

import pytest

from ocirt import syscalls as sc
from ocirt.errors import ConfigError
from ocirt.rootfs import mounts


class FakeSyscalls:
    """Records mount/umount2/openat2; openat2 opens for real under the given dirfd
    (ignoring the resolve flags, which are recorded)."""

    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail or {}  # call name -> list of exceptions to raise in turn

    def _maybe_fail(self, name):
        errs = self.fail.get(name)
        if errs:
            raise errs.pop(0)

    def openat2(self, dirfd, path, flags, mode, resolve):
        self.calls.append(("openat2", path, resolve))
        return os.open(path, flags, mode, dir_fd=dirfd)

    def mount(self, source, target, fstype, flags, data):
        self.calls.append(("mount", source, target, fstype, flags, data))
        self._maybe_fail("mount")
        return 0

    def umount2(self, target, flags):
        self.calls.append(("umount2", target, flags))
        return 0

    def mounts(self):
        return [c[1:] for c in self.calls if c[0] == "mount"]


@pytest.fixture
def fake():
    f = FakeSyscalls()
    old = sc.use(f)
    yield f
    sc.use(old)


@pytest.fixture
def rootfs(tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    yield root, fd
    os.close(fd)


def fdpath_target(call_target):
    assert call_target.startswith("/proc/self/fd/")
    return call_target


# --- parse_options -------------------------------------------------------------------

@pytest.mark.parametrize("opt,flag", [
    ("ro", sc.MS_RDONLY), ("nosuid", sc.MS_NOSUID), ("nodev", sc.MS_NODEV),
    ("noexec", sc.MS_NOEXEC), ("sync", sc.MS_SYNCHRONOUS), ("dirsync", sc.MS_DIRSYNC),
    ("remount", sc.MS_REMOUNT), ("mand", sc.MS_MANDLOCK), ("noatime", sc.MS_NOATIME),
    ("nodiratime", sc.MS_NODIRATIME), ("relatime", sc.MS_RELATIME),
    ("strictatime", sc.MS_STRICTATIME), ("lazytime", sc.MS_LAZYTIME),
    ("nosymfollow", sc.MS_NOSYMFOLLOW), ("silent", sc.MS_SILENT), ("bind", sc.MS_BIND),
    ("rbind", sc.MS_BIND | sc.MS_REC), ("iversion", 1 << 23),
])
def test_flag_options(opt, flag):
    o = mounts.parse_options([opt])
    assert o.flags == flag and o.data == "" and o.propagation == []


@pytest.mark.parametrize("setter,clearer", [
    ("ro", "rw"), ("nosuid", "suid"), ("nodev", "dev"), ("noexec", "exec"),
    ("sync", "async"), ("mand", "nomand"), ("noatime", "atime"), ("nodiratime", "diratime"),
    ("relatime", "norelatime"), ("strictatime", "nostrictatime"), ("lazytime", "nolazytime"),
    ("nosymfollow", "symfollow"), ("silent", "loud"), ("iversion", "noiversion"),
])
def test_later_option_wins(setter, clearer):
    assert mounts.parse_options([setter, clearer]).flags == 0
    assert mounts.parse_options([clearer, setter]).flags != 0


def test_defaults_clears_restrictions():
    o = mounts.parse_options(["ro", "nosuid", "nodev", "noexec", "sync", "defaults"])
    assert o.flags == 0
    assert mounts.parse_options(["defaults", "ro"]).flags == sc.MS_RDONLY


@pytest.mark.parametrize("opt,flag", [
    ("private", sc.MS_PRIVATE), ("rprivate", sc.MS_PRIVATE | sc.MS_REC),
    ("shared", sc.MS_SHARED), ("rshared", sc.MS_SHARED | sc.MS_REC),
    ("slave", sc.MS_SLAVE), ("rslave", sc.MS_SLAVE | sc.MS_REC),
    ("unbindable", sc.MS_UNBINDABLE), ("runbindable", sc.MS_UNBINDABLE | sc.MS_REC),
])
def test_propagation_options(opt, flag):
    o = mounts.parse_options([opt])
    assert o.propagation == [flag] and o.flags == 0


def test_data_options_kept_in_order():
    o = mounts.parse_options(["nosuid", "mode=755", "size=65536k", "ro", "uid=5"])
    assert o.data == "mode=755,size=65536k,uid=5"
    assert o.flags == sc.MS_NOSUID | sc.MS_RDONLY


def test_userspace_options_dropped():
    o = mounts.parse_options(["tmpcopyup", "x-systemd.automount", "x-foo=bar"])
    assert o.data == "" and o.flags == 0


@pytest.mark.parametrize("opts,want", [(["rbind", "idmap"], "idmap"),
                                       (["rbind", "ridmap"], "ridmap"),
                                       (["ridmap", "idmap"], "ridmap"), (["rbind"], None)])
def test_idmap_options(opts, want):
    o = mounts.parse_options(opts, "mounts[3]")
    assert o.idmap == want and o.data == ""


def test_mount_type():
    assert mounts.mount_type({"type": "bind"}) == ""
    assert mounts.mount_type({"type": "tmpfs"}) == "tmpfs"
    assert mounts.mount_type({}) == ""
    assert mounts.is_bind({"type": "bind"})
    assert mounts.is_bind({"type": "none", "options": ["rbind"]})
    assert not mounts.is_bind({"type": "tmpfs", "options": ["ro"]})


# --- do_mount through the seam ---------------------------------------------------------

def test_tmpfs_mount(fake, rootfs):
    root, fd = rootfs
    m = {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}
    mounts.do_mount(fd, m, 4, "/bundle")
    assert (root / "dev" / "shm").is_dir(), "destination created inside the rootfs"
    [(source, target, fstype, flags, data)] = fake.mounts()
    fdpath_target(target)
    assert (source, fstype, data) == ("shm", "tmpfs", "mode=1777,size=65536k")
    assert flags == sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_NODEV
    resolves = [c[2] for c in fake.calls if c[0] == "openat2"]
    assert all(r & sc.RESOLVE_IN_ROOT for r in resolves), "destinations resolve in the root"


def test_relative_destination_is_under_root(fake, rootfs):
    root, fd = rootfs
    mounts.do_mount(fd, {"destination": "rel/dir", "type": "tmpfs", "source": "tmpfs"}, 0,
                    "/b")
    assert (root / "rel" / "dir").is_dir()


def test_source_defaults_to_type(fake, rootfs):
    _root, fd = rootfs
    mounts.do_mount(fd, {"destination": "/proc", "type": "proc"}, 0, "/b")
    assert fake.mounts()[0][0] == "proc"


def test_remount_flag_not_passed_to_new_mount(fake, rootfs):
    _root, fd = rootfs
    mounts.do_mount(fd, {"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                         "options": ["remount", "ro"]}, 0, "/b")
    assert fake.mounts()[0][3] == sc.MS_RDONLY


def test_bind_then_remount_for_flags(fake, rootfs, tmp_path):
    _root, fd = rootfs
    src = tmp_path / "src"
    src.mkdir()
    mounts.do_mount(fd, {"destination": "/data", "type": "none", "source": str(src),
                         "options": ["rbind", "ro", "nosuid"]}, 2, "/b")
    first, second = fake.mounts()
    assert first[0] == str(src) and first[2] is None
    assert first[3] == sc.MS_BIND | sc.MS_REC
    assert second[0] is None
    assert second[3] == sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID


def test_plain_bind_needs_no_remount(fake, rootfs, tmp_path):
    _root, fd = rootfs
    src = tmp_path / "src"
    src.mkdir()
    mounts.do_mount(fd, {"destination": "/data", "type": "bind", "source": str(src)}, 0, "/b")
    assert [c[3] for c in fake.mounts()] == [sc.MS_BIND]


def test_bind_relative_source_is_bundle_relative(fake, rootfs, tmp_path):
    _root, fd = rootfs
    (tmp_path / "vol").mkdir()
    mounts.do_mount(fd, {"destination": "/v", "type": "none", "source": "vol",
                         "options": ["bind"]}, 0, str(tmp_path))
    assert fake.mounts()[0][0] == str(tmp_path / "vol")


def test_bind_file_creates_file(fake, rootfs, tmp_path):
    root, fd = rootfs
    src = tmp_path / "resolv.conf"
    src.write_text("nameserver 1.1.1.1\n")
    mounts.do_mount(fd, {"destination": "/etc/resolv.conf", "type": "none",
                         "source": str(src), "options": ["bind"]}, 0, "/b")
    assert (root / "etc" / "resolv.conf").is_file()
    assert (root / "etc").is_dir()


def test_bind_missing_source_names_field(fake, rootfs):
    _root, fd = rootfs
    with pytest.raises(ConfigError) as e:
        mounts.do_mount(fd, {"destination": "/d", "type": "none", "source": "/no/such/src",
                             "options": ["bind"]}, 5, "/b")
    assert e.value.path == "mounts[5].source"
    assert fake.mounts() == []


def test_propagation_after_mount(fake, rootfs):
    _root, fd = rootfs
    mounts.do_mount(fd, {"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                         "options": ["rshared", "ro"]}, 0, "/b")
    (first, second) = fake.mounts()
    assert first[3] == sc.MS_RDONLY
    assert second[0] is None and second[3] == sc.MS_SHARED | sc.MS_REC


def test_mount_failure_names_index(rootfs):
    _root, fd = rootfs
    f = FakeSyscalls(fail={"mount": [OSError(22, "Invalid argument")]})
    old = sc.use(f)
    try:
        with pytest.raises(ConfigError) as e:
            mounts.do_mount(fd, {"destination": "/t", "type": "nosuchfs", "source": "x"}, 7,
                            "/b")
    finally:
        sc.use(old)
    assert e.value.path == "mounts[7]"
    assert "Invalid argument" in str(e.value) and "nosuchfs" in str(e.value)


def test_cgroup_mount_goes_to_cgroup_mounter(fake, rootfs):
    _root, fd = rootfs
    got = []
    mounts.do_mount(fd, {"destination": "/sys/fs/cgroup", "type": "cgroup",
                         "source": "cgroup", "options": ["ro"]}, 6, "/b",
                    cgroup_mounter=lambda target, opts, where: got.append((opts.flags, where)))
    assert got == [(sc.MS_RDONLY, "mounts[6]")]
    assert fake.mounts() == []


def test_remount_bind_keeps_locked_flags(rootfs):
    """EPERM on a remount (flags locked by a more privileged namespace): retried
    with the flags the mount already has."""
    _root, fd = rootfs
    f = FakeSyscalls(fail={"mount": [PermissionError(1, "Operation not permitted")]})
    old = sc.use(f)
    try:
        mounts.remount_bind(f"/proc/self/fd/{fd}", sc.MS_RDONLY)
    finally:
        sc.use(old)
    first, second = f.mounts()
    assert first[3] == sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY
    assert second[3] & first[3] == first[3]
    vfs = os.statvfs(f"/proc/self/fd/{fd}")
    if vfs.f_flag & os.ST_NOSUID:
        assert second[3] & sc.MS_NOSUID
    if vfs.f_flag & os.ST_RELATIME:
        assert second[3] & sc.MS_RELATIME


def test_use_returns_previous():
    a, b = FakeSyscalls(), FakeSyscalls()
    old = sc.use(a)
    try:
        assert sc.use(b) is a
        sc.mount("s", "/t", "tmpfs", 0, None)
        assert b.mounts() == [("s", "/t", "tmpfs", 0, None)] and a.mounts() == []
    finally:
        sc.use(old)
