"""pause / resume: freeze and thaw every process of a container (freezer v1,
cgroup.freeze v2)."""
from .. import status as S
from ..errors import OcirtError
from ..cgroups import restore


def _cgroup(c):
    """The container's cgroup manager."""
    if not c.state.cgroup:
        raise OcirtError(f"container {c.id} has no cgroup to freeze")
    return restore(c.state.cgroup)


def pause(c):
    cg = _cgroup(c)
    c.require(S.PAUSE)
    cg.freeze()


def resume(c):
    cg = _cgroup(c)
    c.require(S.RESUME)
    cg.thaw()
