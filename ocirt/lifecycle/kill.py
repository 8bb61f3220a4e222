"""kill: signal the container's init (or, with all, every process in its cgroup)."""
import os
import _signal

from .. import rules, state as statemod, status as S
from ..errors import OcirtError
from ..lazy import cgroups, lifecycle_query


def parse_signal(sig):
    """A signal given as a number, NAME or SIGNAME (runc accepts all three; the table
    is ocirt/rules.py, which the C front shares)."""
    num = rules.parse_signal(sig)
    if num is None:
        s = str(sig).strip()
        raise OcirtError(f"invalid signal {sig!r}" if s.isdigit() else
                         f"unknown signal {sig!r}")
    return num  # 0: only checks that the container's init is there


def kill(c, sig=_signal.SIGTERM, all_processes=False):
    num = parse_signal(sig)
    st = c.state
    status = c.status()
    if num == _signal.SIGKILL and st.cgroup and not st.own_pid_namespace():
        # no pid namespace of its own: init's death takes nothing with it, so every
        # process in its cgroup gets the SIGKILL, init gone or not (as runc does)
        cgroups.restore(st.cgroup).kill_all()
        return
    if status == S.STOPPED and all_processes:
        return  # runc: --all of a stopped container is no error (nothing to signal)
    c.require(S.KILL)
    if all_processes and st.cgroup:
        cgroups.restore(st.cgroup).signal_all(num)
        return
    if all_processes:
        # no cgroup (rootless without a delegated one): init's pid namespace, or
        # init and its descendants
        signal_init(st, num)
        for pid in lifecycle_query.container_pids(st):
            if pid != st.pid:
                try:
                    os.kill(pid, num)
                except (ProcessLookupError, PermissionError):
                    pass
        return
    signal_init(st, num)
    if num == _signal.SIGKILL and status == S.PAUSED and st.cgroup:
        # a frozen process dies only once thawed (cgroup v1): thaw it, as runc does
        try:
            cgroups.restore(st.cgroup).thaw()
        except OSError:
            pass


def signal_init(st, num):
    """Signal init through a pidfd checked against its start time, so a recycled
    pid can never be hit."""
    try:
        fd = os.pidfd_open(st.pid)
    except ProcessLookupError:
        raise OcirtError(f"container {st.id}: no such process") from None
    try:
        if not statemod.process_alive(st.pid, st.init_start):
            raise OcirtError(f"container {st.id}: container not running")
        _signal.pidfd_send_signal(fd, num)
    except ProcessLookupError:
        raise OcirtError(f"container {st.id}: no such process") from None
    finally:
        os.close(fd)
