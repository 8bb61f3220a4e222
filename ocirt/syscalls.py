"""The syscall seam: the only caller of the cffi shim.

Code elsewhere calls the module-level functions (``syscalls.mount(...)``);
unit tests swap the implementation with ``syscalls.use(fake)`` and get a record
of every call instead of touching the kernel.
"""
import os

from .errors import ConfigError
from .lazy import shim_lib

# Namespace flags (linux/sched.h)
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000

MNT_DETACH = 0x2

# open_tree / mount_setattr / move_mount (idmapped mounts)
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_IDMAP = 0x00100000
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_EMPTY_PATH = 0x40

# openat2 resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

CLOSE_RANGE_CLOEXEC = 1 << 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

RLIM_INFINITY = (1 << 64) - 1


class Real:
    """Calls into the shim; loaded on first use."""

    def __init__(self):
        self.ffi, self.lib = shim_lib.ffi, shim_lib.lib

    @staticmethod
    def _check(rc, what, path=None):
        if rc < 0:
            err = -rc
            if path is not None:
                raise OSError(err, f"{what}: {os.strerror(err)}", path)
            raise OSError(err, f"{what}: {os.strerror(err)}")
        return rc

    def unshare(self, flags):
        return self._check(self.lib.ocirt_unshare(flags), "unshare")

    def setns(self, fd, nstype):
        return self._check(self.lib.ocirt_setns(fd, nstype), "setns")

    def pivot_root(self, new_root, put_old):
        return self._check(self.lib.ocirt_pivot_root(new_root.encode(), put_old.encode()),
                           "pivot_root", new_root)

    def mount(self, source, target, fstype, flags, data):
        n = self.ffi.NULL
        rc = self.lib.ocirt_mount(source.encode() if source else n, target.encode(),
                                  fstype.encode() if fstype else n, flags,
                                  data.encode() if data else n)
        return self._check(rc, "mount", target)

    def umount2(self, target, flags):
        return self._check(self.lib.ocirt_umount2(target.encode(), flags), "umount", target)

    def sethostname(self, name):
        b = name.encode()
        return self._check(self.lib.ocirt_sethostname(b, len(b)), "sethostname")

    def setdomainname(self, name):
        b = name.encode()
        return self._check(self.lib.ocirt_setdomainname(b, len(b)), "setdomainname")

    def close_range(self, first, last, flags):
        return self._check(self.lib.ocirt_close_range(first, last, flags), "close_range")

    def openat2(self, dirfd, path, flags, mode, resolve):
        return self._check(self.lib.ocirt_openat2(dirfd, path.encode(), flags, mode, resolve),
                           "open", path)

    def personality(self, persona):
        return self._check(self.lib.ocirt_personality(persona), "personality")

    def join_session_keyring(self, name):
        return self._check(self.lib.ocirt_join_session_keyring(
            name.encode() if name else self.ffi.NULL), "keyctl(JOIN_SESSION_KEYRING)")

    def setgroups(self, gids):
        arr = self.ffi.new("unsigned int[]", list(gids) or [0])
        return self._check(self.lib.ocirt_setgroups(len(gids), arr), "setgroups")

    def if_up(self, name):
        return self._check(self.lib.ocirt_if_up(name.encode()), f"bring up {name}")

    def prctl(self, option, a2=0, a3=0, a4=0, a5=0):
        return self._check(self.lib.ocirt_prctl(option, a2, a3, a4, a5), "prctl")

    def capget(self):
        """(effective, permitted, inheritable) of this thread, as 64-bit masks."""
        out = self.ffi.new("unsigned long long[3]")
        self._check(self.lib.ocirt_capget(out), "capget")
        return out[0], out[1], out[2]

    def capset(self, effective, permitted, inheritable):
        return self._check(self.lib.ocirt_capset(effective, permitted, inheritable), "capset")

    def capbset_drop(self, keep, last):
        return self._check(self.lib.ocirt_capbset_drop(keep, last), "prctl")

    def setrlimit(self, resource, soft, hard):
        return self._check(self.lib.ocirt_setrlimit(resource, soft, hard), "setrlimit")

    def protect_paths(self, paths, readonly):
        """maskedPaths/readonlyPaths in one C call; (rc, index, stage), see shim.c."""
        out = self.ffi.new("int[2]")
        blob = b"\0".join(p.encode() for p in paths) + b"\0"
        rc = self.lib.ocirt_protect_paths(blob, len(paths), 1 if readonly else 0,
                                          out, out + 1)
        return rc, out[0], out[1]

    def open_tree(self, dfd, path, flags):
        return self._check(self.lib.ocirt_open_tree(dfd, path.encode(), flags), "open_tree",
                           path)

    def move_mount(self, from_dfd, from_path, to_dfd, to_path, flags):
        return self._check(self.lib.ocirt_move_mount(from_dfd, from_path.encode(), to_dfd,
                                                     to_path.encode(), flags), "move_mount")

    def mount_setattr(self, dfd, path, flags, attr_set, attr_clr=0, propagation=0,
                      userns_fd=0):
        return self._check(self.lib.ocirt_mount_setattr(dfd, path.encode(), flags, attr_set,
                                                        attr_clr, propagation, userns_fd),
                           "mount_setattr")

    def userns_fd(self, uid_map, gid_map):
        """A new user namespace with these maps (text), as an fd; OSError names the
        step that failed."""
        stage = self.ffi.new("int *")
        rc = self.lib.ocirt_userns_fd(uid_map.encode(), gid_map.encode(), stage)
        what = {1: "clone", 2: "uid_map", 3: "gid_map", 4: "open"}.get(stage[0], "userns")
        return self._check(rc, f"user namespace ({what})")

    def set_mempolicy(self, mode, nodes):
        words = (max(nodes) // 64 + 1) if nodes else 0
        mask = self.ffi.new("unsigned long[]", max(words, 1))
        for n in nodes:
            mask[n // 64] |= 1 << (n % 64)
        return self._check(self.lib.ocirt_set_mempolicy(mode, mask, words), "set_mempolicy")

    def park(self, fd):
        return self._check(self.lib.ocirt_park(fd), "accept")

    def seccomp(self, op, flags, arg=None):
        """seccomp(2) raw; `arg` is None (NULL) or an int (passed by pointer, u32)."""
        ptr = self.ffi.NULL if arg is None else self.ffi.new("unsigned int *", arg)
        return self._check(self.lib.ocirt_seccomp(op, flags, ptr), "seccomp")

    def seccomp_load(self, flags, prog, sockfd=-1, msg=b""):
        return self._check(self.lib.ocirt_seccomp_load(flags, prog, len(prog), sockfd,
                                                       msg, len(msg)), "seccomp")

    def ioprio_set(self, which, who, ioprio):
        return self._check(self.lib.ocirt_ioprio_set(which, who, ioprio), "ioprio_set")

    def sched_setattr(self, pid, policy, flags=0, nice=0, priority=0, runtime=0,
                      deadline=0, period=0):
        return self._check(self.lib.ocirt_sched_setattr(pid, policy, flags, nice, priority,
                                                        runtime, deadline, period),
                           "sched_setattr")

    def bpf(self, cmd, attr, ptrs=None):
        """bpf(2): `attr` a bytearray (the union bpf_attr, updated in place); `ptrs`
        {offset: bytes/bytearray} whose addresses are stored as u64 at offset."""
        keep = []
        for off, buf in (ptrs or {}).items():
            cbuf = self.ffi.from_buffer(buf, require_writable=isinstance(buf, bytearray))
            keep.append(cbuf)
            attr[off:off + 8] = int(self.ffi.cast("uintptr_t", cbuf)).to_bytes(8, "little")
        cattr = self.ffi.from_buffer(attr, require_writable=True)
        return self._check(self.lib.ocirt_bpf(cmd, cattr, len(attr)), "bpf")


_impl = None


def use(impl):
    """Swap the implementation (tests); returns the previous one."""
    global _impl
    old, _impl = _impl, impl
    return old


def impl():
    global _impl
    if _impl is None:
        _impl = Real()
    return _impl


def unshare(flags): return impl().unshare(flags)
def setns(fd, nstype): return impl().setns(fd, nstype)
def pivot_root(new_root, put_old): return impl().pivot_root(new_root, put_old)
def mount(source, target, fstype=None, flags=0, data=None):
    return impl().mount(source, target, fstype, flags, data)
def umount2(target, flags=0): return impl().umount2(target, flags)
def sethostname(name): return impl().sethostname(name)
def setdomainname(name): return impl().setdomainname(name)
def close_range(first, last, flags=0): return impl().close_range(first, last, flags)
def openat2(dirfd, path, flags, mode=0, resolve=0):
    return impl().openat2(dirfd, path, flags, mode, resolve)
def personality(persona): return impl().personality(persona)
def join_session_keyring(name=None): return impl().join_session_keyring(name)
def setgroups(gids): return impl().setgroups(gids)
def if_up(name): return impl().if_up(name)
def prctl(option, a2=0, a3=0, a4=0, a5=0): return impl().prctl(option, a2, a3, a4, a5)
def capget(): return impl().capget()
def capset(effective, permitted, inheritable):
    return impl().capset(effective, permitted, inheritable)
def capbset_drop(keep, last): return impl().capbset_drop(keep, last)
def setrlimit(resource, soft, hard):
    """setrlimit(2) of this process; -1 is RLIM_INFINITY (as with resource.setrlimit)."""
    if soft == -1:
        soft = RLIM_INFINITY
    if hard == -1:
        hard = RLIM_INFINITY
    if not (0 <= soft <= RLIM_INFINITY and 0 <= hard <= RLIM_INFINITY):
        raise ValueError("limit out of range")
    return impl().setrlimit(resource, soft, hard)
def protect_paths(paths, readonly):
    """Mask (readonly false) or make read-only each container path, after pivot_root:
    (0, _, 0) or (-errno, index of the path, stage: 1 open, 2 mask, 3 not the null
    device, 4 read-only). None when the implementation has no batch call (fakes)."""
    f = getattr(impl(), "protect_paths", None)
    return None if f is None else f(paths, readonly)
def open_tree(dfd, path, flags): return impl().open_tree(dfd, path, flags)
def move_mount(from_dfd, from_path, to_dfd, to_path, flags):
    return impl().move_mount(from_dfd, from_path, to_dfd, to_path, flags)
def mount_setattr(dfd, path, flags, attr_set, attr_clr=0, propagation=0, userns_fd=0):
    return impl().mount_setattr(dfd, path, flags, attr_set, attr_clr, propagation, userns_fd)
def userns_fd(uid_map, gid_map): return impl().userns_fd(uid_map, gid_map)


def set_mempolicy(mode, nodes): return impl().set_mempolicy(mode, nodes)


def park(fd=-1):
    """MADV_DONTNEED this process's code (private executable file mappings), then,
    with fd >= 0, accept a connection on it (close-on-exec) and return it."""
    return impl().park(fd)
def seccomp(op, flags, arg=None): return impl().seccomp(op, flags, arg)
def seccomp_load(flags, prog, sockfd=-1, msg=b""):
    return impl().seccomp_load(flags, prog, sockfd, msg)
def ioprio_set(which, who, ioprio): return impl().ioprio_set(which, who, ioprio)
def sched_setattr(pid, policy, flags=0, nice=0, priority=0, runtime=0, deadline=0, period=0):
    return impl().sched_setattr(pid, policy, flags, nice, priority, runtime, deadline, period)
def bpf(cmd, attr, ptrs=None): return impl().bpf(cmd, attr, ptrs)


# --- the kernel's control files (/proc, id maps), with errors naming the field

def read_control(path):
    """The text of a small kernel file, stripped; None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def write_control(path, value, where):
    """Write `value` to `path` in one write(2); a failure is a ConfigError at `where`."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise ConfigError(where, f"cannot write {value.strip()!r} to {path}: {e.strerror}") from None


def unescape(s, mark="\\", width=3, base=8):
    """`mark` followed by `width` digits in `base` -> that character: mountinfo's octal
    escapes (the default: space, tab, newline, backslash), D-Bus addresses' %XX."""
    if mark not in s:
        return s
    out, i = [], 0
    while i < len(s):
        digits = s[i + 1:i + 1 + width]
        if s[i] == mark and len(digits) == width:
            try:
                out.append(chr(int(digits, base)))
                i += 1 + width
                continue
            except ValueError:
                pass
        out.append(s[i])
        i += 1
    return "".join(out)


def unescape_mountinfo(s):
    """A field of /proc/*/mountinfo."""
    return unescape(s)
