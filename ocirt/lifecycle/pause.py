"""pause / resume: freeze and thaw every process of a container (freezer v1,
cgroup.freeze v2)."""
from .. import status as S
from ..errors import OcirtError


def _cgroup(c):
    cg = c.state.cgroup
    if not cg:
        raise OcirtError(f"container {c.id} has no cgroup to freeze")
    return cg


def pause(c):
    cg = _cgroup(c)
    c.require(S.PAUSE)
    from .. import cgroups
    cgroups.freeze(cg)


def resume(c):
    cg = _cgroup(c)
    c.require(S.RESUME)
    from .. import cgroups
    cgroups.thaw(cg)
