"""delete: remove a stopped container (or, forced, kill it first)."""
import os
import select
import _signal as signal

from .. import state as statemod
from ..errors import ContainerNotFound, OcirtError, WrongState


def delete(cid, force=False, root=None):
    c = statemod.Container(root or statemod.default_root(), cid)
    try:
        c.lock()
        c.load()
    except ContainerNotFound:
        if not force:
            raise
        # runc's rule: --force on a missing container succeeds (after clearing any
        # directory a create that died early left without state.json)
        if os.path.isdir(c.dir):
            c.remove_dir()
        c.unlock()
        return
    try:
        status = c.status()
        if status in ("running", "paused") and not force:
            raise WrongState(f"cannot delete container {cid} that is not stopped: {status}")
        if status != "stopped":
            # runc's rule: a created container is killed without --force too.
            _kill_and_wait(c.state, status)
        destroy(c)
    finally:
        c.unlock()


def _kill_and_wait(st, status):
    cg = st.get("x_cgroup")
    if cg:
        from ..cgroups import kill_all
        kill_all(cg)  # thaws a paused container and kills every process in it
    else:
        # rootless without a cgroup: init's descendants (its pid namespace dies with it)
        from ..cli.ps import container_pids
        for pid in container_pids(st):
            if pid != st["pid"]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
    try:
        fd = os.pidfd_open(st["pid"])
    except ProcessLookupError:
        return
    try:
        if statemod.process_alive(st["pid"], st.get("x_init_start")):
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                return
            p = select.poll()
            p.register(fd, select.POLLIN)
            if not p.poll(10000):
                raise OcirtError(f"container {st['id']}: init did not die after SIGKILL")
    finally:
        os.close(fd)


def destroy(c):
    """Release everything a stopped container holds: cgroup, hooks, state dir."""
    st = c.state
    if st.get("x_cgroup"):
        from ..cgroups import remove
        remove(st["x_cgroup"])
    if st.get("x_intelrdt"):
        from ..intelrdt import remove_state
        remove_state(st["x_intelrdt"])
    if st.get("x_host_mounts"):
        from ..rootfs.mounts import unmount_below
        unmount_below(st["rootfs"], self_bind=st.get("x_rootfs_bind", False))
    hooks = st.get("x_hooks")
    if hooks:
        from ..hooks import run_list_warn
        s = c.oci_state()
        s["status"] = "stopped"
        run_list_warn(hooks, "poststop", s)
    c.remove_dir()
