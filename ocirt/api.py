"""ocirt as a library: the same operations, validation, errors and state files as
the CLI, for Python programs that embed the runtime (an online judge, a CI system).

    from ocirt import api
    api.create("job1", "/path/to/bundle")
    api.start("job1")
    print(api.state("job1")["status"])
    status = api.wait("job1")          # only from the process that called create/run
    api.delete("job1")

Every failure raises ocirt.errors.OcirtError (ConfigError names the JSON path).
`root` defaults to /run/user/$UID/ocirt, as for the CLI.
"""
from dataclasses import dataclass
import os
import select

from .container import Container
from .errors import ConfigError, ContainerNotFound, OcirtError, WrongState  # noqa: F401
from .lifecycle.create import create  # noqa: F401
from .lifecycle.run import run  # noqa: F401
from .container import Options, options_of as _opts  # noqa: F401
from .specgen import default_spec  # noqa: F401
from . import syscalls
from .lazy import lifecycle_measured


# Each call by id is one Container method (ocirt/container.py), as for the CLI.
def start(cid, root=None):
    with Container.load(_opts(root), cid, lock=True) as c:
        c.start()


def kill(cid, sig="SIGTERM", all_processes=False, root=None):
    Container.load(_opts(root), cid).signal(sig, all_processes)


def delete(cid, force=False, root=None):
    Container.handle(_opts(root), cid).delete(force)


def pause(cid, root=None):
    with Container.load(_opts(root), cid, lock=True) as c:
        c.pause()


def resume(cid, root=None):
    with Container.load(_opts(root), cid, lock=True) as c:
        c.resume()


def state(cid, root=None):
    """The OCI state document."""
    return Container.load(_opts(root), cid).oci_state()


def list_containers(root=None):
    return Container.all(_opts(root))


@dataclass(frozen=True, slots=True)
class RunResult:
    """The verdict of run_measured. Times in seconds, sizes in bytes; None where the
    kernel has no such counter (pids_peak; peak_swap on cgroup v1, which counts memory
    and swap together)."""
    exit_code: int | None      # None when a signal killed it
    signal: int | None
    oom_killed: bool           # the cgroup's oom_kill counter, not a guess from SIGKILL
    timed_out: bool            # wall_limit reached: every process of the container killed
    wall_time: float           # from start to the last process gone
    cpu_user: float | None
    cpu_system: float | None
    peak_memory: int | None    # v2 memory.peak, v1 memory.max_usage_in_bytes
    peak_swap: int | None      # v2 memory.swap.peak
    pids_peak: int | None


def run_measured(id, bundle, *, root=None, wall_limit=None, stdin=None, stdout=None,
                 stderr=None):
    """Create, start, wait and delete container `id`; return its RunResult.

    `wall_limit` (s): past it every process of the container is killed (timed_out).
    stdin/stdout/stderr: a path, an open file or fd, or None (/dev/null); the process
    never gets the caller's terminal. Raises ConfigError naming the field for a limit
    that cannot be applied, before anything runs; leaves nothing behind on any path."""
    return RunResult(**lifecycle_measured.run_measured(
        id, bundle, root=root, wall_limit=wall_limit, stdin=stdin, stdout=stdout,
        stderr=stderr))


def wait(cid, root=None):
    """Wait for the container's init and return its exit status (128+N for signal N).

    Works when the caller is init's parent or subreaper (see run(); or call
    become_subreaper() before create()); otherwise waits for the exit without a status
    and returns None."""
    pid = Container.load(_opts(root), cid).state.pid  # recorded: state() says 0 once exited
    if not pid:
        return None
    try:
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) if status & 0x7F == 0 else 128 + (status & 0x7F)
    except ChildProcessError:
        fd = os.pidfd_open(pid)
        try:
            select.select([fd], [], [])
        finally:
            os.close(fd)
        return None


def become_subreaper():
    """Make this process the reaper of containers it creates, so wait() gets statuses."""
    syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
