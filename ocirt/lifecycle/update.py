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


def update(cid, resources, root=None):
    c = statemod.Container(root or statemod.default_root(), cid).lock()
    try:
        c.load()
        status = c.status()
        if status == "stopped":
            raise WrongState(f"container {cid}: container not running (stopped)")
        cg = c.state.get("x_cgroup")
        if not cg:
            raise OcirtError(f"container {cid} has no cgroup")
        from .. import cgroups
        cgroups.update(cg, resources, "linux.resources")
    finally:
        c.unlock()
