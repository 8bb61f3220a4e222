"""pause / resume: freeze and thaw every process of a container (freezer v1,
cgroup.freeze v2)."""
from .. import state as statemod
from ..errors import OcirtError, WrongState


def _load(cid, root):
    c = statemod.Container(root or statemod.default_root(), cid).lock()
    try:
        c.load()
    except BaseException:
        c.unlock()
        raise
    cg = c.state.get("x_cgroup")
    if not cg:
        c.unlock()
        raise OcirtError(f"container {cid} has no cgroup to freeze")
    return c, cg


def pause(cid, root=None):
    c, cg = _load(cid, root)
    try:
        status = c.status()
        if status not in ("running", "created"):
            raise WrongState(f"container {cid}: container not running ({status})")
        from .. import cgroups
        cgroups.freeze(cg)
    finally:
        c.unlock()


def resume(cid, root=None):
    c, cg = _load(cid, root)
    try:
        status = c.status()
        if status != "paused":
            raise WrongState(f"container {cid}: container not paused ({status})")
        from .. import cgroups
        cgroups.thaw(cg)
    finally:
        c.unlock()
