"""delete: remove a stopped container (or, forced, kill it first)."""
import os
import select
import _signal as signal

from .. import state as statemod, status as S
from ..errors import ContainerNotFound, OcirtError
from ..lazy import cgroups, hooks, intelrdt, lifecycle_query, mounts


def delete(c, force=False):
    """`c`: a Container handle (ocirt/container.py), not yet loaded."""
    try:
        c.rec.lock()
        c.rec.load()
    except ContainerNotFound:
        if not force:
            raise
        # runc's rule: --force on a missing container succeeds (after clearing any
        # directory a create that died early left without state.json)
        if os.path.isdir(c.dir):
            c.rec.remove_dir()
        c.unlock()
        return
    try:
        status = c.require(S.DELETE, force)
        if status != S.STOPPED:
            # runc's rule: a created container is killed without --force too.
            _kill_and_wait(c.state, status)
        destroy(c)
    finally:
        c.unlock()


def _kill_and_wait(st, status):
    cg = st.cgroup
    if cg:
        cgroups.restore(cg).kill_all()  # thaws a paused container and kills every process in it
    else:
        # rootless without a cgroup: init's descendants (its pid namespace dies with it)
        for pid in lifecycle_query.container_pids(st):
            if pid != st.pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
    try:
        fd = os.pidfd_open(st.pid)
    except ProcessLookupError:
        return
    try:
        if statemod.process_alive(st.pid, st.init_start):
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                return
            p = select.poll()
            p.register(fd, select.POLLIN)
            if not p.poll(10000):
                raise OcirtError(f"container {st.id}: init did not die after SIGKILL")
    finally:
        os.close(fd)


def destroy(c):
    """Release everything a stopped container holds: cgroup, RDT group, host mounts,
    poststop hooks, the record."""
    st = c.state
    if st.cgroup:
        cgroups.restore(st.cgroup).destroy()
    if st.intelrdt:
        intelrdt.remove_state(st.intelrdt)
    if st.host_mounts:
        mounts.unmount_below(st.rootfs, self_bind=st.rootfs_bind)
    if st.hooks_poststop:
        hooks.run_list_warn(st.hooks_poststop, "poststop", st.oci(S.STOPPED))
    c.rec.remove_dir()
