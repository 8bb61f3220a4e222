"""kill: signal the container's init (or, with all, every process in its cgroup)."""
import os
import _signal

from .. import state as statemod
from ..errors import OcirtError


def parse_signal(sig):
    """A signal given as a number, NAME or SIGNAME (runc accepts all three)."""
    if isinstance(sig, int):
        num = sig
    else:
        s = str(sig).strip()
        if s.isdigit():
            num = int(s)
        else:
            name = s.upper()
            if not name.startswith("SIG"):
                name = "SIG" + name
            num = getattr(_signal, name, None)
            if not isinstance(num, int) or name.startswith("SIG_"):
                raise OcirtError(f"unknown signal {sig!r}")
            num = int(num)
    if not 0 <= num <= 64:  # 0: only checks that the container's init is there
        raise OcirtError(f"invalid signal {sig!r}")
    return num


def kill(cid, sig=_signal.SIGTERM, all_processes=False, root=None):
    num = parse_signal(sig)
    c = statemod.Container(root or statemod.default_root(), cid)
    c.load()
    status = c.status()
    if num == _signal.SIGKILL and c.state.get("x_cgroup") and \
            not statemod.own_pid_namespace(c.state):
        # no pid namespace of its own: init's death takes nothing with it, so every
        # process in its cgroup gets the SIGKILL, init gone or not (as runc does)
        from ..cgroups import kill_all
        kill_all(c.state["x_cgroup"])
        return
    if status == "stopped":
        if all_processes:
            return  # runc: --all of a stopped container is no error (nothing to signal)
        raise OcirtError(f"container {cid}: container not running")
    if all_processes and c.state.get("x_cgroup"):
        from ..cgroups import signal_all
        signal_all(c.state["x_cgroup"], num)
        return
    if all_processes:
        # no cgroup (rootless without a delegated one): init's pid namespace, or
        # init and its descendants
        from ..cli.ps import container_pids
        signal_init(c.state, num)
        for pid in container_pids(c.state):
            if pid != c.state["pid"]:
                try:
                    os.kill(pid, num)
                except (ProcessLookupError, PermissionError):
                    pass
        return
    signal_init(c.state, num)
    if num == _signal.SIGKILL and status == "paused" and c.state.get("x_cgroup"):
        # a frozen process dies only once thawed (cgroup v1): thaw it, as runc does
        from ..cgroups import thaw
        try:
            thaw(c.state["x_cgroup"])
        except OSError:
            pass


def signal_init(st, num):
    """Signal init through a pidfd checked against its start time, so a recycled
    pid can never be hit."""
    try:
        fd = os.pidfd_open(st["pid"])
    except ProcessLookupError:
        raise OcirtError(f"container {st['id']}: no such process") from None
    try:
        if not statemod.process_alive(st["pid"], st.get("x_init_start")):
            raise OcirtError(f"container {st['id']}: container not running")
        _signal.pidfd_send_signal(fd, num)
    except ProcessLookupError:
        raise OcirtError(f"container {st['id']}: no such process") from None
    finally:
        os.close(fd)
