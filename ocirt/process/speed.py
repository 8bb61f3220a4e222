"""What makes create, run and exec fast, in one place. The verbs and the process
chain call the four seams below at fixed points of every fork; the tricks behind
them, and why each is worth it, are here only:

- the cgroup primer (below): the kernel's first cgroup move after a quiet spell
  waits for an RCU grace period (~8-11 ms here, asleep); a no-op move started first
  lets it pass while Python loads and the config is read. The C front starts it
  before Python does and hands over a pipe; without the front, a thread.
- the module bundle (ocirt/_bundle.py, the launcher's one file of compiled modules):
  dropped before a process that stays (init) is forked, or its ~0.6 MiB would stay
  resident in every waiting container.
- the C modules `_socket` and `_signal` where the code needs only what they have:
  `socket` and `signal` import enum and selectors, ~2 ms of every command's start
  (architecture.md, "Import cost").
- the cgroup made after init is forked (launcher.py, cgroups.base.Manager.make):
  not a trick but the order of the process chain, described there.
"""
import os
import _thread
from ..lazy import _bundle


def begin(opts, primer_fd=None):
    """First of a verb that will move a process into a cgroup (create, run, exec).
    `primer_fd`: the C front's primer pipe (ocirt.main.from_front), or None."""
    prime(primer_fd, systemd=opts.systemd_cgroup)


def before_fork(stays=False):
    """Before any fork: no thread may run across it. `stays`: the child is one that
    outlives this process (init), so the bundle goes first."""
    wait()
    if stays:
        _bundle.release()


def in_child():
    """First in a forked child: it must not keep the front's primer alive."""
    release()


def placed():
    """The parent's cgroup writes for the new process are done."""
    release()


# --- the cgroup primer ----------------------------------------------------------
# A move into a cgroup (a write to cgroup.procs, v1 or v2) takes the kernel's global
# cgroup_threadgroup_rwsem for writing; after a quiet spell the first one waits for
# an RCU grace period (its rcu_sync leaves the reader-only mode) while holding the
# cgroup mutex; moves within a grace period or so of another are fast (~0.5 ms).
# The no-op move: this process writes "0" (itself) into the cgroup.procs of the
# cgroup it is in, which moves nothing (no attach callback runs) but starts that
# grace period. Every failure is ignored (timing only). Root only (an unprivileged
# caller can't open the file), and not with the systemd driver (its set-up forks).
# The C front (ocirt/_shim/front/) forks a primer process before Python starts,
# which writes again every 3 ms until we close the pipe it gave us
# (OCIRT_PRIMER_FD, read by ocirt.main.from_front): no thread is needed then.

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
