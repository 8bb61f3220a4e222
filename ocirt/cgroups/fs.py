"""Helpers shared by the v1 and v2 drivers: mount discovery, paths, file I/O."""
import errno
import os
import _signal as signal
import time

from ..errors import ConfigError, OcirtError
from ..syscalls import unescape_mountinfo as _unescape

MOUNTINFO = "/proc/self/mountinfo"


def cgroup_mounts(mountinfo=MOUNTINFO):
    """[(fstype, mountpoint, root, superoptions)] of every cgroup/cgroup2 mount,
    the first mount of each hierarchy winning."""
    out = []
    with open(mountinfo) as f:
        for line in f:
            parts = line.split()
            try:
                sep = parts.index("-")
            except ValueError:
                continue
            fstype = parts[sep + 1]
            if fstype not in ("cgroup", "cgroup2"):
                continue
            out.append((fstype, _unescape(parts[4]), _unescape(parts[3]),
                        parts[sep + 3] if len(parts) > sep + 3 else ""))
    return out


def own_cgroups(pid="self"):
    """{hierarchy key: path} from /proc/<pid>/cgroup; key "" is the v2 hierarchy,
    v1 keys are the comma-joined controller list as the kernel prints it."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            _, ctrls, path = line.split(":", 2)
            out[ctrls] = path
    return out


def under_mount(mountpoint, mount_root, cgpath):
    """Host directory of hierarchy path `cgpath` for a mount of `mount_root`."""
    rel = os.path.relpath(cgpath, mount_root) if mount_root != "/" else cgpath.lstrip("/")
    if rel == ".":
        return mountpoint
    if rel.startswith(".."):
        raise OcirtError(f"cgroup {cgpath} is outside the mounted part of its hierarchy"
                         f" ({mountpoint} shows {mount_root})")
    return os.path.join(mountpoint, rel)


def clean_path(p):
    """Normalise a cgroup path; '..' may not climb above its base."""
    parts = []
    for c in p.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if not parts:
                raise ConfigError("linux.cgroupsPath", f"{p!r} climbs above the cgroup root")
            parts.pop()
            continue
        parts.append(c)
    return "/" + "/".join(parts)


def read(path):
    with open(path) as f:
        return f.read()


def read_int(path, default=None):
    try:
        s = read(path).strip()
    except OSError:
        return default
    if s == "max":
        return default
    try:
        return int(s)
    except ValueError:
        return default


def read_kv(path):
    """A 'key value' file (memory.stat, cpu.stat, memory.events) as {key: int}."""
    out = {}
    try:
        data = read(path)
    except OSError:
        return out
    for line in data.splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def write(dirpath, name, value, field, what=None):
    """Write one cgroup file; any failure names the config field."""
    path = os.path.join(dirpath, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_TRUNC)
    except FileNotFoundError:
        raise ConfigError(field, f"the kernel has no {name} in {dirpath}"
                          f"{' (' + what + ')' if what else ''}", errno=errno.ENOENT) from None
    except OSError as e:
        raise ConfigError(field, f"cannot open {path}: {e.strerror}", errno=e.errno) from None
    try:
        os.write(fd, str(value).encode())
    except OSError as e:
        reason = e.strerror
        if e.errno == errno.EINVAL:
            reason = "the kernel rejects it (Invalid argument)"
        elif e.errno == errno.EBUSY:
            reason = "the kernel refuses it now (Device or resource busy)"
        raise ConfigError(field, f"writing {str(value)!r} to {path}: {reason}",
                          errno=e.errno) from None
    finally:
        os.close(fd)


def add_pid(pid, dirpaths):
    """Move `pid` into each cgroup dir: one cgroup.procs write each. A failure is an
    OcirtError carrying the OS error's errno (EACCES/EPERM: a move the caller may not
    make, which a systemd placement may make instead)."""
    data = str(pid).encode()
    for path in dirpaths:
        try:
            fd = os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as e:
            raise OcirtError(f"cgroup: adding pid {pid} to {path}: {e.strerror}",
                             errno=e.errno) from None


def check_makeable(d):
    """A cgroup dir the caller may not make is refused while planning, before init is
    forked (the mkdir itself comes after): the error the mkdir would give, earlier."""
    cur = d
    while not os.path.isdir(cur):
        up = os.path.dirname(cur)
        if up == cur:
            return
        cur = up
    if cur != d and not os.access(cur, os.W_OK | os.X_OK, effective_ids=True):
        first = cur.rstrip("/") + "/" + d[len(cur.rstrip("/")) + 1:].split("/")[0]
        raise ConfigError("linux.cgroupsPath", f"cannot create cgroup {first}: "
                          f"{os.strerror(errno.EACCES)}", errno=errno.EACCES)


def procs(dirpath, recursive=True):
    """Pids in a cgroup dir (and, recursively, its children)."""
    out = []
    try:
        with open(os.path.join(dirpath, "cgroup.procs")) as f:
            out.extend(int(x) for x in f.read().split())
    except FileNotFoundError:
        return out
    if recursive:
        try:
            for e in os.scandir(dirpath):
                if e.is_dir(follow_symlinks=False):
                    out.extend(procs(e.path, True))
        except FileNotFoundError:
            pass
    return out


def signal_pids(pids, signum):
    for p in pids:
        try:
            os.kill(p, signum)
        except ProcessLookupError:
            pass


def remove_dirs(created, leaves, probe, kill_all):
    """A container's cgroup dirs, removed: straight away when `probe` (a leaf) holds
    no process, the usual case of a stopped container; otherwise, or when a leaf
    stays busy (a process some other hierarchy holds), after kill_all()."""
    if probe and not procs(probe) and not remove_created(created, leaves):
        return
    try:
        kill_all()
    except OcirtError:
        pass
    busy = remove_created(created, leaves)
    if busy:
        raise OcirtError(f"cannot remove cgroup {busy[0]}: still busy")


def remove_created(created, leaves):
    """Remove the dirs a container made (`created`, parents first), deepest first.
    A leaf goes with any child cgroups below it; a parent only when empty, with one
    rmdir: it may hold other containers' cgroups by now (stopped ones too, whose
    final usage is theirs). Returns the leaves still there (busy)."""
    busy = []
    for d in reversed(created or []):
        if d in leaves:
            if not rmdir_tree(d):
                busy.append(d)
        else:
            try:
                os.rmdir(d)
            except OSError:
                pass
    return busy


def rmdir_tree(path):
    """Remove a cgroup dir and any child cgroups below it (children first)."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return True
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            rmdir_tree(e.path)
    return rmdir_retry(path)


def rmdir_retry(path, tries=200):
    """rmdir; a cgroup whose last task just died can stay busy for a moment."""
    delay = 0.001
    for _ in range(tries):
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as e:
            if e.errno not in (errno.EBUSY, errno.EAGAIN) or procs(path, recursive=False):
                return False  # busy with a live process: waiting will not help
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    return False


def kill_loop(dirpaths, signum=signal.SIGKILL, timeout=10.0):
    """SIGKILL everything in `dirpaths` until they are empty (forks race the kill)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = []
        for d in dirpaths:
            pids.extend(procs(d))
        if not pids:
            return True
        signal_pids(set(pids), signum)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
