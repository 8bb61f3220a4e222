"""update: change a live container's resources (runc's `update`)."""
import re

from .. import state as statemod
from ..errors import OcirtError, WrongState

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


def update(cid, resources, root=None, l3_cache_schema=None, mem_bw_schema=None):
    c = statemod.Container(root or statemod.default_root(), cid).lock()
    try:
        c.load()
        status = c.status()
        if status == "stopped":
            raise WrongState(f"container {cid}: container not running (stopped)")
        cg = c.state.get("x_cgroup")
        if not cg:
            raise OcirtError(f"container {cid} has no cgroup")
        rdt = None
        if l3_cache_schema or mem_bw_schema:  # refused before anything changes
            from .. import intelrdt
            rdt = intelrdt.update_container(c.state.get("x_intelrdt"), cid,
                                            l3_cache_schema, mem_bw_schema)
            old = rdt.update(l3_cache_schema, mem_bw_schema)
        from .. import cgroups
        try:
            cgroups.update(cg, resources, "linux.resources")
        except BaseException:
            if rdt is not None:
                rdt.restore(old)
            raise
        if rdt is not None:
            c.state["x_intelrdt"] = rdt.to_state()
            c.save()
    finally:
        c.unlock()
