"""A measured run, for judges: create, start, wait (with a wall-clock limit), read the
verdict from the cgroup once every process is gone, delete. One call, nothing left
behind on any path (see ocirt.api.run_measured and docs/api.md)."""
import os
import select
import time

from ..container import Container
from ..errors import OcirtError
from ..container import options_of
from ..usage import verdict
from .create import create
from .start import start
from .. import syscalls as sc
from ..cgroups import restore

_EMPTY_WAIT = 10.0  # s: after init, for the rest of the cgroup to go


def run_measured(cid, bundle, root=None, wall_limit=None, stdin=None, stdout=None,
                 stderr=None):
    """-> dict of RunResult's fields (api.run_measured wraps it)."""
    if wall_limit is not None and not wall_limit > 0:
        raise OcirtError(f"wall_limit must be a positive number of seconds, not {wall_limit!r}")
    opts = options_of(root)
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)  # init's parent exits: its status comes to us
    opened = []
    try:
        fds = (_fd(stdin, False, opened, "stdin"), _fd(stdout, True, opened, "stdout"),
               _fd(stderr, True, opened, "stderr"))
        pid = create(cid, bundle, opts=opts, park=False, stdio=fds)
    finally:
        for fd in opened:
            os.close(fd)
    try:
        return _measure(Container.load(opts, cid), pid, wall_limit)
    finally:
        Container.handle(opts, cid).delete(force=True)


def _measure(c, pid, wall_limit):
    cid = c.id
    cg = c.state.cgroup
    pidfd = os.pidfd_open(pid)
    try:
        t0 = time.monotonic()
        c.rec.lock()
        try:
            start(c)
        finally:
            c.unlock()
        timed_out = False
        try:
            status = _wait(pid, pidfd, None if wall_limit is None else t0 + wall_limit)
            if status is None:  # the wall limit: every process of the container goes
                timed_out = True
                _kill_all(c.state, pid)
                status = _wait(pid, pidfd, time.monotonic() + _EMPTY_WAIT)
                if status is None:
                    raise OcirtError(f"container {cid}: init did not die within "
                                     f"{_EMPTY_WAIT:.0f} s of SIGKILL")
            _wait_empty(c.state, cid)
        except BaseException:  # KeyboardInterrupt too: kill, then delete (the caller's finally)
            _kill_all(c.state, pid)
            raise
        wall = time.monotonic() - t0
    finally:
        os.close(pidfd)
    _reap_orphans(cg)
    return verdict(c.state, status, timed_out, wall)


def _fd(what, write, opened, name):
    """A path, an open file or fd, or None (/dev/null) -> an fd for the container."""
    if what is None:
        what = os.devnull
    if isinstance(what, (str, bytes, os.PathLike)):
        flags = (os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if write else os.O_RDONLY
        try:
            fd = os.open(what, flags | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise OcirtError(f"{name} {os.fsdecode(what)}: {e.strerror}") from None
        opened.append(fd)
        return fd
    try:
        fd = what if isinstance(what, int) else what.fileno()
    except (OSError, ValueError, AttributeError) as e:  # io.StringIO and the like
        raise OcirtError(f"{name}: {type(what).__name__} has no file descriptor ({e})") \
            from None
    try:
        os.fstat(fd)
    except OSError as e:
        raise OcirtError(f"{name}: fd {fd}: {e.strerror}") from None
    if hasattr(what, "flush"):
        what.flush()
    return fd


def _wait(pid, pidfd, deadline):
    """init's exit status, or None when `deadline` (monotonic) passes first."""
    while True:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            ready, _, _ = select.select([pidfd], [], [], timeout)
        except InterruptedError:
            continue
        if not ready:
            return None
        _, st = os.waitpid(pid, 0)
        return 128 + os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)


def _kill_all(st, pid):
    cg = st.cgroup
    if cg:
        try:
            restore(cg).kill_all()
        except (OSError, OcirtError):
            pass
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def _wait_empty(st, cid):
    """Until no process is left in the container's cgroup (without a pid namespace of
    its own, init's children outlive it: they are killed, as delete would)."""
    cg = st.cgroup
    if not cg:
        return
    cg = restore(cg)
    deadline = time.monotonic() + _EMPTY_WAIT
    killed = False
    delay = 0.0005
    while not cg.is_empty():
        if not killed:
            cg.kill_all()
            killed = True
        if time.monotonic() > deadline:
            raise OcirtError(f"container {cid}: its cgroup still has processes "
                             f"{_EMPTY_WAIT:.0f} s after init exited and SIGKILL")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _reap_orphans(cg):
    """Processes of the container that outlived init were reparented to us (the
    subreaper): reap those zombies, and only those (the caller's own children stay)."""
    if not cg:
        return
    paths = _cgroup_paths(cg)
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return
    for t in tasks:
        try:
            with open(f"/proc/self/task/{t}/children") as f:
                kids = [int(p) for p in f.read().split()]
        except OSError:
            continue
        for kid in kids:
            try:
                with open(f"/proc/{kid}/cgroup") as f:
                    mine = any(ln.endswith(p) for ln in f.read().split("\n") for p in paths)
            except OSError:
                continue
            if mine:
                try:
                    os.waitpid(kid, os.WNOHANG)
                except ChildProcessError:
                    pass


def _cgroup_paths(cg):
    """What a line of /proc/PID/cgroup ends with for a process of this container (it
    names the path below each mount: the leaf, which carries the container's id)."""
    return {"/" + d.rstrip("/").rsplit("/", 1)[-1] for d in restore(cg).leaves()}
