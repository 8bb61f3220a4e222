"""Start the kernel's cgroup-migration grace period early, on a thread.

Moving a process into a cgroup (a write to cgroup.procs, v1 or v2) takes the
kernel's global cgroup_threadgroup_rwsem for writing. When no migration has
happened for a while, that first write waits for an RCU grace period (the
rwsem's rcu_sync leaves its fast, reader-only mode): ~8-11 ms on this kind of
VM, spent asleep, on the critical path of `create` (the intermediate's
placement) and `exec` (the joiner's). Writes that follow within a grace period
or so are fast (~0.5 ms).

So `create`, `run` and `exec` begin, first thing, a no-op migration on a thread:
this process writes "0" (itself) into the cgroup.procs of the cgroup it is
already in, which moves nothing (a task already in the destination is skipped,
no controller's attach callback runs) but starts that grace period while the
main thread validates the config, loads the shim and makes the container's
cgroup. `wait()` joins the thread before any fork. Every failure is ignored: this
only ever changes timing. Root only (an unprivileged caller can't open the
file), and not with the systemd driver (its set-up forks).

The C front (ocirt/_shim/front.c) does better when it starts us: it forks a
primer process before Python even starts, which keeps the grace period passed
until we close the pipe it gave us (OCIRT_PRIMER_FD, which ocirt.main reads and
the verb passes to prime()); then no thread is needed,
and release() ends the primer once our own cgroup writes are done.
"""
import os
import _thread

_lock = None
_primer_fd = None


def prime(primer_fd=None, systemd=False):
    """Start the no-op migration on a thread (once per process), unless the front's
    primer already runs. `primer_fd`: the pipe the C front's primer waits on
    (OCIRT_PRIMER_FD, read by ocirt.main.from_front), or None; taken only when it is
    such a pipe. `systemd`: --systemd-cgroup, whose set-up forks (no thread then)."""
    global _lock, _primer_fd
    if primer_fd is not None and _primer_fd is None:
        try:
            if primer_fd >= 64 and os.fstat(primer_fd).st_mode & 0o170000 == 0o010000:
                os.set_inheritable(primer_fd, False)  # not a caller's fd; no hook gets it
                _primer_fd = primer_fd
                return
        except OSError:
            pass
    if _lock is not None or os.geteuid() != 0 or systemd:
        return
    try:
        path = own_procs_file()  # here, not on the thread: Python code needs the GIL
    except (OSError, ValueError):
        return
    if path is None:
        return
    lock = _thread.allocate_lock()
    lock.acquire()
    started = _thread.allocate_lock()
    started.acquire()
    try:
        _thread.start_new_thread(_run, (lock, started, path))
    except RuntimeError:
        return
    _lock = lock
    # Hand the GIL over until the thread is in the kernel: a new thread otherwise
    # waits for this one to block or for the switch interval (5 ms) before it
    # even begins, and the grace period starts that much later.
    started.acquire()


def wait():
    """Join the thread started by prime(): call before forking."""
    global _lock
    lock, _lock = _lock, None
    if lock is not None:
        lock.acquire()


def release():
    """Our cgroup writes are done: end the front's primer (call in a forked child
    too, which must not hold it open)."""
    global _primer_fd
    fd, _primer_fd = _primer_fd, None
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def _run(lock, started, path):
    try:
        started.release()
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)  # releases the GIL
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
    except BaseException:  # noqa: BLE001 - timing only; nothing to report
        pass
    finally:
        lock.release()


def own_procs_file():
    """cgroup.procs of this process's own cgroup, in the unified hierarchy if one is
    mounted, else in the first v1 hierarchy found; None if none is visible."""
    with open("/proc/self/cgroup", "rb") as f:
        cgroup = f.read().decode()
    with open("/proc/self/mountinfo", "rb") as f:
        mountinfo = f.read().decode()
    return pick(cgroup, mountinfo)


def pick(cgroup, mountinfo):
    """own_procs_file() from the texts of /proc/self/cgroup and /proc/self/mountinfo."""
    own = {}
    for line in cgroup.splitlines():
        _id, ctrls, path = line.split(":", 2)
        own[ctrls] = path
    v1 = None
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        rf = right.split()
        if len(rf) < 3 or rf[0] not in ("cgroup2", "cgroup"):
            continue
        lf = left.split()
        root, point = lf[3], lf[4]
        if rf[0] == "cgroup2":
            key = ""
        else:
            opts = rf[2].split(",")
            key = next((k for k in own if k and set(k.split(",")) <= set(opts)), None)
            if key is None:
                continue
        path = own.get(key)
        if path is None or not (path + "/").startswith(root.rstrip("/") + "/"):
            continue
        rel = path[len(root.rstrip("/")):]
        cand = point.replace("\\040", " ") + rel.rstrip("/") + "/cgroup.procs"
        if key == "":
            return cand
        if v1 is None:
            v1 = cand
    return v1
