"""config.md Root and Mounts; config-linux.md Devices, Default Devices, Rootfs
Mount Propagation, Masked Paths, Readonly Paths; `create --no-pivot`."""
import os
import subprocess

import pytest

from helpers import add_userns, assert_error


def parse_mountinfo(text):
    out = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        f = left.split()
        r = right.split()
        out.append({"mp": f[4].replace("\\040", " "), "opts": set(f[5].split(",")),
                    "optional": f[6:], "fstype": r[0], "source": r[1],
                    "super": set(r[2].split(",")) if len(r) > 2 else set()})
    return out


def mount_at(mounts, mp):
    found = [m for m in mounts if m["mp"] == mp]
    assert found, f"nothing mounted at {mp}: {[m['mp'] for m in mounts]}"
    return found[-1]  # the top one


def writable(b):
    b.config["root"]["readonly"] = False
    return b


def host_dir(b, name, files=None):
    d = os.path.join(b.path, name)
    os.makedirs(d, exist_ok=True)
    for fname, text in (files or {}).items():
        with open(os.path.join(d, fname), "w") as f:
            f.write(text)
    return d


def run_mountinfo(ocirt, b, script="cat /proc/self/mountinfo", *flags):
    r = ocirt.run_sh(b, script, *flags).ok()
    return parse_mountinfo(r.stdout)


# --- root ----------------------------------------------------------------------------

def test_root_readonly(ocirt, bundle):
    """root.readonly true: the root filesystem MUST be read-only inside."""
    assert bundle.config["root"]["readonly"] is True
    r = ocirt.run_sh(bundle, "touch /x 2>&1; echo rc=$?; grep ' / / ' /proc/self/mountinfo")
    assert "rc=1" in r.stdout and "Read-only file system" in r.stdout, r
    assert not os.path.exists(os.path.join(bundle.rootfs, "x"))


def test_root_writable(ocirt, bundle):
    writable(bundle)
    r = ocirt.run_sh(bundle, "echo data > /x && cat /x")
    assert r.ok().stdout == "data\n"
    with open(os.path.join(bundle.rootfs, "x")) as f:
        assert f.read() == "data\n"


def test_root_is_the_bundle_rootfs(ocirt, bundle):
    with open(os.path.join(bundle.rootfs, "etc/marker"), "w") as f:
        f.write(ocirt.marker)
    r = ocirt.run_sh(bundle, "cat /etc/marker; echo; ls /")
    assert r.ok().lines[0] == ocirt.marker


def test_root_path_relative_to_bundle(ocirt, bundle):
    os.rename(bundle.rootfs, os.path.join(bundle.path, "other-root"))
    bundle.config["root"]["path"] = "other-root"
    r = ocirt.run_sh(bundle, "echo ok")
    assert r.ok().stdout == "ok\n"
    os.rename(os.path.join(bundle.path, "other-root"), bundle.rootfs)


def test_root_path_absolute(ocirt, bundle):
    bundle.config["root"]["path"] = bundle.rootfs
    assert ocirt.run_sh(bundle, "echo ok").ok().stdout == "ok\n"


def test_host_root_not_reachable(ocirt, bundle):
    """pivot_root: none of the host's mounts is left in the container."""
    mounts = run_mountinfo(ocirt, bundle)
    allowed = ({"/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"}
               | set(bundle.linux.get("maskedPaths", []))
               | set(bundle.linux.get("readonlyPaths", [])))
    extra = {m["mp"] for m in mounts if m["mp"] not in allowed
             and not (m["mp"] + "/").startswith("/sys/fs/cgroup/")}
    assert not extra, f"mounts in the container not from its config: {extra}"


def test_no_pivot_does_not_expose_a_bare_proc(ocirt, bundle):
    """--no-pivot leaves the host's mounts under the chroot: the host's proc and sysfs
    mounts are detached first, so a user namespace made in the container cannot mount
    a fresh procfs past the masked paths (runc's no_pivot test)."""
    bundle.args("unshare", "-mrpf", "sh", "-c",
                "mount -t proc none /proc && echo mounted").write()
    for s in ("bounding", "permitted"):
        bundle.process["capabilities"][s].append("CAP_SETFCAP")
    bundle.write()
    r = ocirt.run(ocirt.new_id(), bundle, "--no-pivot")
    assert "mounted" not in r.stdout and "permission denied" in r.stderr, r


def test_no_pivot(ocirt, bundle):
    """--no-pivot: the rootfs is entered with MS_MOVE + chroot and still works."""
    with open(os.path.join(bundle.rootfs, "etc/marker"), "w") as f:
        f.write("no-pivot")
    r = ocirt.run_sh(bundle, "cat /etc/marker; echo; touch /y 2>/dev/null; echo rc=$?",
                     "--no-pivot")
    assert r.ok().lines == ["no-pivot", "rc=1"]


def test_no_pivot_create_start(ocirt, bundle):
    bundle.args("cat", "/etc/hostname").write()
    cid = ocirt.new_id()
    ocirt.create(cid, bundle, "--no-pivot").ok()
    ocirt.start(cid).ok()
    ocirt.wait_status(cid, "stopped")
    ocirt.delete(cid).ok()


# --- rootfsPropagation -----------------------------------------------------------

@pytest.mark.parametrize("prop,tag", [("shared", "shared:"), ("private", None),
                                      ("unbindable", "unbindable")])
def test_rootfs_propagation(ocirt, bundle, prop, tag):
    bundle.linux["rootfsPropagation"] = prop
    root = mount_at(run_mountinfo(ocirt, bundle), "/")
    opt = " ".join(root["optional"])
    if tag:
        assert tag in opt, f"rootfsPropagation {prop}: / has {opt!r}"
    else:
        assert "shared:" not in opt and "master:" not in opt, root


def test_rootfs_propagation_slave_receives_host_mounts(ocirt, tmp_path):
    """slave: a mount made on the host under the rootfs after create shows up
    inside (the host side is made shared for this)."""
    top = tmp_path / "shared"
    top.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "octest", str(top)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(top)], check=True)
        b = ocirt.bundle(where=str(top))
        b.linux["rootfsPropagation"] = "slave"
        os.makedirs(os.path.join(b.rootfs, "mnt/late"))
        b.sh("while [ ! -e /mnt/late/flag ]; do sleep 0.05; done; "
             "grep ' / / ' /proc/self/mountinfo").write()
        cid = ocirt.new_id()
        ocirt.create(cid, b).ok()
        ocirt.start(cid).ok()
        late = os.path.join(b.rootfs, "mnt/late")
        subprocess.run(["mount", "-t", "tmpfs", "octest-late", late], check=True)
        try:
            with open(os.path.join(late, "flag"), "w") as f:
                f.write("1")
            ocirt.wait_status(cid, "stopped")
        finally:
            subprocess.run(["umount", late], check=True)
        ocirt.delete(cid).ok()
    finally:
        subprocess.run(["umount", "-R", "-l", str(top)], check=True)


# --- mounts ------------------------------------------------------------------------

def test_mounts_in_listed_order(ocirt, bundle):
    """The runtime MUST mount entries in the listed order: of two binds on one
    destination, the second is on top."""
    first = host_dir(bundle, "first", {"which": "first"})
    second = host_dir(bundle, "second", {"which": "second"})
    for src in (first, second):
        bundle.config["mounts"].append({"destination": "/data", "type": "none",
                                        "source": src, "options": ["bind"]})
    r = ocirt.run_sh(bundle, "cat /data/which")
    assert r.ok().stdout == "second"
    bundle.config["mounts"][-2:] = bundle.config["mounts"][-2:][::-1]
    r = ocirt.run_sh(bundle, "cat /data/which")
    assert r.ok().stdout == "first"


def test_mount_nested_in_earlier_mount(ocirt, bundle):
    """A destination inside an earlier mount is created in that mount."""
    bundle.config["mounts"] += [
        {"destination": "/outer", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/outer/inner", "type": "tmpfs", "source": "tmpfs",
         "options": ["size=1m"]}]
    mounts = run_mountinfo(ocirt, bundle)
    assert mount_at(mounts, "/outer")["fstype"] == "tmpfs"
    assert mount_at(mounts, "/outer/inner")["fstype"] == "tmpfs"
    mps = [m["mp"] for m in mounts]
    assert mps.index("/outer") < mps.index("/outer/inner")


def test_mount_relative_destination(ocirt, bundle):
    """A relative destination MUST be interpreted as relative to /."""
    bundle.config["mounts"].append({"destination": "rel/dir", "type": "tmpfs",
                                    "source": "tmpfs"})
    mounts = run_mountinfo(ocirt, bundle)
    assert mount_at(mounts, "/rel/dir")["fstype"] == "tmpfs"


def test_default_filesystems(ocirt, bundle):
    mounts = run_mountinfo(ocirt, bundle)
    for mp, fstype in (("/proc", "proc"), ("/sys", "sysfs"), ("/dev/pts", "devpts"),
                       ("/dev/shm", "tmpfs"), ("/dev", "tmpfs"), ("/dev/mqueue", "mqueue")):
        assert mount_at(mounts, mp)["fstype"] == fstype


def test_mount_data_options_passed(ocirt, bundle):
    """Unknown options go to mount(2)'s data: tmpfs mode= and size=."""
    bundle.config["mounts"].append({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["mode=0710", "size=2m"]})
    r = ocirt.run_sh(bundle, "stat -c %a /t; grep ' /t ' /proc/self/mountinfo")
    lines = r.ok().lines
    assert lines[0] == "710"
    m = parse_mountinfo(lines[1])[0]
    assert "size=2048k" in m["super"] and "mode=710" in m["super"], m


FLAG_OPTIONS = [("ro", "ro"), ("nosuid", "nosuid"), ("nodev", "nodev"), ("noexec", "noexec"),
                ("noatime", "noatime"), ("nodiratime", "nodiratime"), ("relatime", "relatime")]
CLEARING = {"rw": "ro", "suid": "nosuid", "dev": "nodev", "exec": "noexec"}
PROPAGATION_OPTIONS = [("shared", "shared:"), ("unbindable", "unbindable"), ("private", None)]


@pytest.fixture(scope="module")
def option_mounts(module_ocirt):
    """One container with one mount per option checked below; its mountinfo."""
    o = module_ocirt
    b = o.bundle()
    src = host_dir(b, "src")
    for opt, _flag in FLAG_OPTIONS:
        b.config["mounts"].append({"destination": f"/tmpfs-{opt}", "type": "tmpfs",
                                   "source": "tmpfs", "options": [opt]})
        b.config["mounts"].append({"destination": f"/bind-{opt}", "type": "none",
                                   "source": src, "options": ["bind", opt]})
    for opt, neg in CLEARING.items():
        b.config["mounts"].append({"destination": f"/clear-{opt}", "type": "tmpfs",
                                   "source": "tmpfs", "options": [neg, opt]})
    b.config["mounts"].append({"destination": "/strictatime", "type": "tmpfs",
                               "source": "tmpfs", "options": ["strictatime"]})
    for opt, _tag in PROPAGATION_OPTIONS:
        b.config["mounts"].append({"destination": f"/prop-{opt}", "type": "tmpfs",
                                   "source": "tmpfs", "options": [opt]})
    return run_mountinfo(o, b)


@pytest.mark.parametrize("opt,flag", FLAG_OPTIONS)
@pytest.mark.parametrize("kind", ["tmpfs", "bind"])
def test_mount_flag_option(option_mounts, opt, flag, kind):
    got = mount_at(option_mounts, f"/{kind}-{opt}")
    assert flag in got["opts"], f"{kind} mount with {opt}: {got}"


@pytest.mark.parametrize("opt", list(CLEARING))
def test_mount_clearing_option(option_mounts, opt):
    """The positive option after its negation clears it (mount(8) semantics)."""
    got = mount_at(option_mounts, f"/clear-{opt}")
    if opt == "rw":
        assert "rw" in got["opts"] and "ro" not in got["opts"]
    else:
        assert CLEARING[opt] not in got["opts"], got


def test_mount_strictatime(option_mounts):
    got = mount_at(option_mounts, "/strictatime")
    assert not got["opts"] & {"relatime", "noatime"}, got


@pytest.mark.parametrize("prop,tag", PROPAGATION_OPTIONS)
def test_mount_propagation_option(option_mounts, prop, tag):
    got = mount_at(option_mounts, f"/prop-{prop}")
    opt = " ".join(got["optional"])
    if tag:
        assert tag in opt, got
    else:
        assert "shared:" not in opt and "master:" not in opt, got


def test_bind_mount_readonly(ocirt, bundle):
    src = host_dir(bundle, "src", {"f": "host"})
    bundle.config["mounts"].append({"destination": "/data", "type": "none", "source": src,
                                    "options": ["rbind", "ro"]})
    r = ocirt.run_sh(bundle, "cat /data/f; echo; echo x > /data/g 2>/dev/null; echo rc=$?")
    assert r.ok().lines == ["host", "rc=1"]
    assert not os.path.exists(os.path.join(src, "g"))


def test_bind_mount_readwrite(ocirt, bundle):
    src = host_dir(bundle, "src")
    bundle.config["mounts"].append({"destination": "/data", "type": "bind", "source": src,
                                    "options": ["rw"]})
    ocirt.run_sh(bundle, "echo from-container > /data/g").ok()
    with open(os.path.join(src, "g")) as f:
        assert f.read() == "from-container\n"


def test_bind_mount_file(ocirt, bundle):
    src = os.path.join(bundle.path, "file.txt")
    with open(src, "w") as f:
        f.write("a file")
    bundle.config["mounts"].append({"destination": "/etc/bound.txt", "type": "none",
                                    "source": src, "options": ["bind", "ro"]})
    assert ocirt.run_sh(bundle, "cat /etc/bound.txt").ok().stdout == "a file"


def test_bind_mount_relative_source_is_bundle_relative(ocirt, bundle):
    host_dir(bundle, "relsrc", {"f": "rel"})
    bundle.config["mounts"].append({"destination": "/data", "type": "none",
                                    "source": "relsrc", "options": ["bind"]})
    assert ocirt.run_sh(bundle, "cat /data/f").ok().stdout == "rel"


def test_rbind_is_recursive_bind_is_not(ocirt, bundle):
    src = host_dir(bundle, "src")
    sub = host_dir(bundle, "src/sub")
    subprocess.run(["mount", "-t", "tmpfs", "octest", sub], check=True)
    try:
        with open(os.path.join(sub, "f"), "w") as f:
            f.write("submount")
        for dest, opt in (("/r", "rbind"), ("/b", "bind")):
            bundle.config["mounts"].append({"destination": dest, "type": "none",
                                            "source": src, "options": [opt]})
        r = ocirt.run_sh(bundle, "cat /r/sub/f; echo; ls /b/sub | wc -l")
        assert r.ok().lines == ["submount", "0"]
    finally:
        subprocess.run(["umount", sub], check=True)


def test_mount_destination_symlink_stays_in_rootfs(ocirt, bundle):
    """A destination through an absolute symlink resolves inside the rootfs,
    never on the host."""
    outside = host_dir(bundle, "outside")
    writable(bundle)
    os.symlink(outside, os.path.join(bundle.rootfs, "escape"))
    bundle.config["mounts"].append({"destination": "/escape/t", "type": "tmpfs",
                                    "source": "tmpfs"})
    r = ocirt.run_sh(bundle, f"grep -c ' {outside}/t ' /proc/self/mountinfo; true")
    assert os.listdir(outside) == [], "a mount point was created outside the rootfs"
    # either refused or mounted at <outside>/t as the container sees it (inside the
    # rootfs; here on the container's own /dev tmpfs, as outside is under /dev/shm)
    if r.returncode == 0:
        assert r.stdout == "1\n", r
    else:
        assert_error(r, "mounts[")


def test_dangling_symlink_destination_never_creates_on_the_host(ocirt, bundle):
    """rootfs/etc/hosts -> <a host dir>/created (dangling inside the rootfs): the bind
    mount's file is made inside the rootfs at that path, never on the host (an
    O_CREAT that followed the link would have made it there)."""
    host = host_dir(bundle, "hostside")
    src = host_dir(bundle, "src", {"hosts": "from the bundle\n"})
    os.unlink(os.path.join(bundle.rootfs, "etc/passwd"))
    os.symlink(f"{host}/created", os.path.join(bundle.rootfs, "etc/passwd"))
    bundle.config["mounts"].append({"destination": "/etc/passwd", "type": "bind",
                                    "source": f"{src}/hosts", "options": ["bind"]})
    writable(bundle)
    r = ocirt.run_sh(bundle, f"cat {host}/created")
    assert not os.path.exists(f"{host}/created"), "a file was created on the host"
    assert r.ok().stdout == "from the bundle\n"


@pytest.mark.parametrize("link,where", [
    (("/jump", "/tmp/foo/bar"), "/tmp/foo/bar/baz/hosts"),  # a dangling component
    (None, "/tmp/hosts"),                                   # a dangling last link
])
def test_bind_mount_through_dangling_symlinks(ocirt, bundle, link, where):
    """runc's "bind mount through a dangling symlink": the path is created where the
    links lead, inside the rootfs, and the mount lands there."""
    src = host_dir(bundle, "src", {"hosts": "bound\n"})
    os.unlink(os.path.join(bundle.rootfs, "etc/passwd"))
    if link:
        os.symlink(link[1], os.path.join(bundle.rootfs, link[0].lstrip("/")))
        os.symlink("/jump/baz/hosts", os.path.join(bundle.rootfs, "etc/passwd"))
    else:
        os.symlink(where, os.path.join(bundle.rootfs, "etc/passwd"))
    bundle.config["mounts"].append({"destination": "/etc/passwd", "source": f"{src}/hosts",
                                    "options": ["bind"]})
    writable(bundle)
    r = ocirt.run_sh(bundle, f"cat {where}; grep -c ' {where} ' /proc/self/mountinfo")
    assert r.ok().lines == ["bound", "1"]


# --- devices -------------------------------------------------------------------------

DEFAULT_DEVICES = {"/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7),
                   "/dev/random": (1, 8), "/dev/urandom": (1, 9), "/dev/tty": (5, 0)}


def test_default_devices(ocirt, bundle):
    """The runtime MUST supply null, zero, full, random, urandom, tty and ptmx."""
    paths = " ".join(DEFAULT_DEVICES)
    r = ocirt.run_sh(bundle, f"stat -c '%n %F %t %T %a' {paths}; readlink /dev/ptmx; "
                             "ls /dev/pts/ptmx")
    lines = r.ok().lines
    for line, (path, (major, minor)) in zip(lines, DEFAULT_DEVICES.items()):
        name, rest = line.split(" ", 1)
        assert name == path
        assert rest == f"character special file {major:x} {minor:x} 666", line
    assert lines[len(DEFAULT_DEVICES)] in ("pts/ptmx", "/dev/pts/ptmx")
    assert lines[-1] == "/dev/pts/ptmx"


def test_default_devices_work(ocirt, bundle):
    r = ocirt.run_sh(bundle, "echo gone > /dev/null && head -c 3 /dev/zero | od -An -tx1 && "
                             "head -c 8 /dev/urandom | wc -c && "
                             "(echo x > /dev/full) 2>&1 | grep -c 'No space'")
    assert r.ok().lines == [" 00 00 00", "8", "1"]


def test_dev_symlinks(ocirt, bundle):
    r = ocirt.run_sh(bundle, "for l in fd stdin stdout stderr; do readlink /dev/$l; done")
    assert r.ok().lines == ["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1",
                            "/proc/self/fd/2"]


def test_linux_devices(ocirt, bundle):
    """linux.devices MUST be available, with type, numbers, fileMode and owner."""
    bundle.linux["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o620,
         "uid": 1000, "gid": 5},
        {"path": "/dev/sub/loopx", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600},
        {"path": "/dev/myfifo", "type": "p"},
    ]
    r = ocirt.run_sh(bundle, "stat -c '%F %t %T %a %u %g' /dev/fuse /dev/sub/loopx; "
                             "stat -c '%F' /dev/myfifo")
    assert r.ok().lines == ["character special file a e5 620 1000 5",
                            "block special file 7 c8 600 0 0",
                            "fifo"]


def test_linux_devices_override_default(ocirt, bundle):
    bundle.linux["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3,
                                "fileMode": 0o600}]
    r = ocirt.run_sh(bundle, "stat -c '%a %t %T' /dev/null")
    assert r.ok().stdout == "600 1 3\n"


def test_device_over_mismatching_file_is_an_error(ocirt, bundle):
    """A file already at `path` that does not match the device: an error."""
    bundle.linux["devices"] = [{"path": "/dev/shm", "type": "c", "major": 1, "minor": 3}]
    assert_error(ocirt.create(ocirt.new_id(), bundle.write()), "linux.devices[0]")
    assert ocirt.state_dirs() == []


# --- maskedPaths / readonlyPaths ---------------------------------------------------

def test_masked_paths_default(ocirt, bundle):
    """maskedPaths: /proc/kcore (a file) and /sys/firmware (a dir) can't be read."""
    assert "/proc/kcore" in bundle.linux["maskedPaths"]
    r = ocirt.run_sh(bundle, "head -c 16 /proc/kcore | wc -c; ls -A /sys/firmware | wc -l")
    assert r.ok().lines == ["0", "0"]


def test_masked_paths_custom(ocirt, bundle):
    os.makedirs(os.path.join(bundle.rootfs, "secret/dir"))
    with open(os.path.join(bundle.rootfs, "secret/file"), "w") as f:
        f.write("top secret")
    with open(os.path.join(bundle.rootfs, "secret/dir/inner"), "w") as f:
        f.write("top secret")
    bundle.linux["maskedPaths"] = ["/secret/file", "/secret/dir", "/does/not/exist"]
    r = ocirt.run_sh(bundle, "cat /secret/file; ls -A /secret/dir | wc -l; "
                             "echo x > /secret/dir/new 2>/dev/null; echo rc=$?")
    assert r.ok().lines == ["0", "rc=1"]
    with open(os.path.join(bundle.rootfs, "secret/file")) as f:
        assert f.read() == "top secret", "masking changed the file itself"


def test_masked_paths_repeated_and_shared(ocirt, bundle):
    """A path listed twice is masked once; masked directories share one read-only
    tmpfs (the same device), as runc's."""
    for d in ("d1", "d2", "d3"):
        os.makedirs(os.path.join(bundle.rootfs, d))
    open(os.path.join(bundle.rootfs, "f1"), "w").close()
    bundle.linux["maskedPaths"] = ["/d1", "/f1", "/d2", "/d1", "/f1", "/d3"]
    r = ocirt.run_sh(bundle, "grep -c ' /d1 ' /proc/self/mountinfo; "
                             "grep -c ' /f1 ' /proc/self/mountinfo; "
                             "stat -c %d /d1 /d2 /d3 | sort -u | wc -l; "
                             "touch /d2/x 2>/dev/null; echo rc=$?")
    assert r.ok().lines == ["1", "1", "1", "rc=1"]


def test_readonly_paths_default(ocirt, bundle):
    """readonlyPaths: /proc/sys is read-only (even for root with CAP_SYS_ADMIN)."""
    assert "/proc/sys" in bundle.linux["readonlyPaths"]
    bundle.process["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    bundle.process["capabilities"]["effective"].append("CAP_SYS_ADMIN")
    bundle.process["capabilities"]["permitted"].append("CAP_SYS_ADMIN")
    r = ocirt.run_sh(bundle, "cat /proc/sys/kernel/hostname; "
                             "echo h > /proc/sys/kernel/hostname 2>/dev/null; echo rc=$?; "
                             "grep ' /proc/sys ' /proc/self/mountinfo")
    lines = r.ok().lines
    assert lines[1] == "rc=1"
    assert "ro" in parse_mountinfo(lines[2])[0]["opts"]


def test_readonly_paths_custom(ocirt, bundle):
    writable(bundle)
    os.makedirs(os.path.join(bundle.rootfs, "data"))
    bundle.linux["readonlyPaths"] = ["/data", "/does/not/exist"]
    r = ocirt.run_sh(bundle, "touch /data/x 2>/dev/null; echo rc=$?; touch /y; echo rc=$?")
    assert r.ok().lines == ["rc=1", "rc=0"]


# config.md: the option strings runtimes MUST implement for Linux.
MUST_OPTIONS = ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
                "iversion", "lazytime", "loud", "noatime", "nodev", "nodiratime", "noexec",
                "noiversion", "nolazytime", "norelatime", "nostrictatime", "nosuid", "private",
                "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave",
                "runbindable", "rw", "shared", "silent", "slave", "strictatime", "suid", "sync",
                "unbindable"]


def test_must_mount_options_accepted(ocirt, bundle):
    """Every MUST option works on a mount (one container, one mount per option:
    a failure names mounts[i], i.e. the option)."""
    src = host_dir(bundle, "src", {"f": "x"})
    base = len(bundle.config["mounts"])
    for i, opt in enumerate(MUST_OPTIONS):
        if opt in ("bind", "rbind"):
            m = {"destination": f"/o/{i}", "type": "none", "source": src, "options": [opt]}
        else:
            m = {"destination": f"/o/{i}", "type": "tmpfs", "source": "tmpfs",
                 "options": [opt]}
        bundle.config["mounts"].append(m)
    r = ocirt.run_sh(bundle, "ls /o | wc -l")
    if r.returncode != 0:
        line = r.stderr.strip()
        bad = [MUST_OPTIONS[i - base] for i in range(base, base + len(MUST_OPTIONS))
               if f"mounts[{i}]" in line]
        raise AssertionError(f"mount option {bad} refused: {line}")
    assert r.stdout.strip() == str(len(MUST_OPTIONS))


def test_must_options_listed_in_features(ocirt):
    import json
    feats = json.loads(ocirt("features").ok().stdout)
    missing = set(MUST_OPTIONS) - set(feats["mountOptions"])
    assert not missing, f"features.mountOptions lacks MUST options {sorted(missing)}"


# --- tmpfs details, recursive attributes, flags of bind mounts (runc's semantics) ----

def test_tmpfs_over_an_existing_dir_takes_its_mode(ocirt, bundle):
    os.makedirs(os.path.join(bundle.rootfs, "tmpfs"))
    os.chmod(os.path.join(bundle.rootfs, "tmpfs"), 0o710)
    bundle.config["mounts"].append({"type": "tmpfs", "source": "tmpfs",
                                    "destination": "/tmpfs",
                                    "options": ["rw", "nodev", "nosuid"]})
    r = ocirt.run_sh(bundle, "stat -c %a /tmpfs; grep ' /tmpfs ' /proc/self/mounts")
    lines = r.ok().lines
    assert lines[0] == "710" and "mode=710" in lines[1]
    bundle.config["mounts"][-1]["options"].append("mode=1500")  # explicit mode= wins
    assert ocirt.run_sh(bundle, "stat -c %a /tmpfs").ok().stdout == "1500\n"
    assert oct(os.stat(os.path.join(bundle.rootfs, "tmpfs")).st_mode & 0o7777) == "0o710"


def test_tmpcopyup(ocirt, bundle):
    """tmpcopyup: the new tmpfs starts with the covered directory's contents (modes,
    links); the directory itself is not changed."""
    d = os.path.join(bundle.rootfs, "dir1")
    os.makedirs(os.path.join(d, "dir2"))
    os.chmod(os.path.join(d, "dir2"), 0o777)
    with open(os.path.join(d, "f"), "w") as f:
        f.write("copied\n")
    os.symlink("f", os.path.join(d, "link"))
    bundle.config["mounts"].append({"type": "tmpfs", "source": "tmpfs",
                                    "destination": "/dir1", "options": ["tmpcopyup"]})
    r = ocirt.run_sh(bundle, "stat -c %a /dir1/dir2; cat /dir1/link; "
                             "touch /dir1/new && grep -c ' /dir1 tmpfs' /proc/self/mounts")
    assert r.ok().lines == ["777", "copied", "1"]
    assert not os.path.exists(os.path.join(d, "new"))


def test_read_only_dev(ocirt, bundle):
    """/dev mounted ro: it is populated first (pts, devices), then made read-only."""
    for m in bundle.config["mounts"]:
        if m["destination"] == "/dev":
            m["options"].append("ro")
    r = ocirt.run_sh(bundle, "ls /dev/null /dev/pts/ptmx >/dev/null && echo ok; "
                             "touch /dev/x 2>/dev/null || echo ro; grep ' /dev ' /proc/self/mounts")
    lines = r.ok().lines
    assert lines[:2] == ["ok", "ro"] and lines[2].split()[3].startswith("ro,")
    assert "nosuid" in lines[2]


def _host_tmpfs(path, opts):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", path], check=True)


def test_rro_is_recursively_read_only(ocirt, bundle):
    """rbind,ro is read-only at the top only; rro (mount_setattr, AT_RECURSIVE) makes
    every mount of the tree read-only."""
    vol = os.path.join(bundle.path, "vol")
    _host_tmpfs(vol, "rw")
    try:
        _host_tmpfs(os.path.join(vol, "sub"), "rw")
        for opts, sub_ro in ((["rbind", "ro"], False), (["rbind", "rro"], True)):
            bundle.config["mounts"] = [m for m in bundle.config["mounts"]
                                       if m["destination"] != "/mnt"]
            bundle.config["mounts"].append({"source": vol, "destination": "/mnt",
                                            "options": opts})
            r = ocirt.run_sh(bundle, "touch /mnt/x 2>/dev/null && echo rw || echo ro; "
                                     "touch /mnt/sub/x 2>/dev/null && echo rw || echo ro")
            assert r.ok().lines == ["ro", "ro" if sub_ro else "rw"], opts
    finally:
        subprocess.run(["umount", "-R", "-l", vol], check=False)


def test_bind_with_a_clearing_flag_gets_exactly_its_flags(ocirt, bundle):
    """A bind mount given a flag (here `dev`) gets exactly the flags asked for: the
    source's ro and noexec are not carried over (runc, unlike mount(8))."""
    vol = os.path.join(bundle.path, "vol")
    _host_tmpfs(vol, "rw")
    try:
        subprocess.run(["mount", "--bind", "-o", "remount,ro,noexec", vol], check=True)
        bundle.config["mounts"].append({"source": vol, "destination": "/mnt", "type": "bind",
                                        "options": ["bind", "dev"]})
        r = ocirt.run_sh(bundle, "grep ' /mnt ' /proc/self/mounts")
        flags = r.ok().stdout.split()[3].split(",")
        assert "rw" in flags and "noexec" not in flags, flags
        bundle.config["mounts"][-1]["options"] = ["bind"]  # no flag: the source's kept
        flags = ocirt.run_sh(bundle, "grep ' /mnt ' /proc/self/mounts").ok().stdout.split()[3]
        assert flags.startswith("ro,") and "noexec" in flags
    finally:
        subprocess.run(["umount", "-l", vol], check=False)


def test_clearing_a_locked_flag_in_a_user_namespace_is_refused(ocirt, bundle):
    """In a user namespace the source mount's nodev is locked: a bind asking for
    `dev` cannot have it and is refused (not run without it); one not asking keeps
    the locked flags."""
    vol = os.path.join(bundle.path, "vol")
    _host_tmpfs(vol, "rw,nodev")
    try:
        add_userns(bundle)
        bundle.config["mounts"].append({"source": vol, "destination": "/tmp/mnt",
                                        "type": "bind", "options": ["bind", "dev"]})
        bundle.write()
        assert_error(ocirt.run(ocirt.new_id(), bundle), "mounts[", "Operation not permitted")
        bundle.config["mounts"][-1]["options"] = ["bind", "nosuid"]
        r = ocirt.run_sh(bundle, "grep ' /tmp/mnt ' /proc/self/mounts")
        assert "nodev" in r.ok().stdout and "nosuid" in r.stdout
    finally:
        subprocess.run(["umount", "-l", vol], check=False)


def test_userns_bind_sources_the_container_cannot_reach(ocirt, bundle):
    """A bind source under a directory only the host's root may enter: the container's
    root (uid 100000 on the host) could not open it; the runtime clones it before init
    runs, so it is mounted all the same (runc's "userns with inaccessible mounts")."""
    secret = os.path.join(bundle.path, "private")
    for d in ("a", "b"):
        host_dir(bundle, f"private/{d}", {"file": d + "\n"})
    os.chmod(secret, 0o700)
    add_userns(bundle)
    for d in ("a", "b"):
        bundle.config["mounts"].append({"source": f"{secret}/{d}", "destination": f"/tmp/{d}",
                                        "options": ["rbind"]})
    r = ocirt.run_sh(bundle, "cat /tmp/a/file /tmp/b/file")
    assert r.ok().lines == ["a", "b"]


def test_destination_spelled_with_the_rootfs_host_path(ocirt, bundle):
    """runc takes a destination that starts with the rootfs's own host path inside the
    rootfs (its mount-order test relies on it)."""
    src = host_dir(bundle, "src", {"f": "here\n"})
    os.makedirs(os.path.join(bundle.rootfs, "final"))
    bundle.config["mounts"].append({"source": src, "destination": bundle.rootfs + "/final",
                                    "options": ["rbind"]})
    assert ocirt.run_sh(bundle, "cat /final/f").ok().stdout == "here\n"
