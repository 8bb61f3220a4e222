"""update: change a live container's resources (runc's `update`)."""
import re

from .. import status as S
from ..errors import OcirtError
from ..cgroups import restore
from ..lazy import intelrdt

_UNIT = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$", re.I)
_MULT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_bytes(s, flag):
    """'512m', '1g', '1024', '2GiB', '-1' -> bytes (binary units, like runc)."""
    s = str(s).strip()
    if s == "-1":
        return -1
    m = _UNIT.match(s)
    if not m:
        raise OcirtError(f"invalid value {s!r} for --{flag}: use bytes or a size like 512m")
    return int(float(m.group(1)) * _MULT[m.group(2).lower()])


def update(c, resources, l3_cache_schema=None, mem_bw_schema=None):
    """`c` locked and loaded."""
    c.require(S.UPDATE)
    cg = c.state.cgroup
    if not cg:
        raise OcirtError(f"container {c.id} has no cgroup")
    rdt = None
    if l3_cache_schema or mem_bw_schema:  # refused before anything changes
        rdt = intelrdt.update_container(c.state.intelrdt, c.id, l3_cache_schema,
                                        mem_bw_schema)
        old = rdt.update(l3_cache_schema, mem_bw_schema)
    try:
        restore(cg).set(resources, "linux.resources")
    except BaseException:
        if rdt is not None:
            rdt.restore(old)
        raise
    if rdt is not None:
        c.state.intelrdt = rdt.to_state()
        c.rec.save()
