"""ocirt update [flags] ID: runc's flags, or -r FILE|- with a JSON LinuxResources
(the flags, when given too, override the matching fields of the file)."""
import json
import sys

from ..errors import OcirtError
from ..container import Container
from ..lifecycle.update import ram_bytes
from . import Flags, need_id
from ..lazy import config

FLAGS = Flags({
    "resources": (("r",), str, None),
    "memory": ((), str, None), "memory-swap": ((), str, None),
    "memory-reservation": ((), str, None), "kernel-memory": ((), str, None),
    "kernel-memory-tcp": ((), str, None),
    "cpu-shares": (("cpu-share",), str, None), "cpu-quota": ((), str, None),
    "cpu-period": ((), str, None), "cpu-rt-period": ((), str, None),
    "cpu-rt-runtime": ((), str, None), "cpu-burst": ((), str, None),
    "cpu-idle": ((), str, None),
    "cpuset-cpus": ((), str, None), "cpuset-mems": ((), str, None),
    "pids-limit": ((), str, None), "blkio-weight": ((), str, None),
    "l3-cache-schema": ((), str, None), "mem-bw-schema": ((), str, None),
})

# flag -> (section, field, parser)
_MAP = {
    "memory": ("memory", "limit", "ram"), "memory-swap": ("memory", "swap", "ram"),
    "memory-reservation": ("memory", "reservation", "ram"),
    "kernel-memory": ("memory", "kernel", "ram"),
    "kernel-memory-tcp": ("memory", "kernelTCP", "ram"),
    "cpu-shares": ("cpu", "shares", "int"), "cpu-quota": ("cpu", "quota", "int"),
    "cpu-period": ("cpu", "period", "int"), "cpu-rt-period": ("cpu", "realtimePeriod", "int"),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", "int"), "cpu-burst": ("cpu", "burst", "int"),
    "cpu-idle": ("cpu", "idle", "int"),
    "cpuset-cpus": ("cpu", "cpus", "str"), "cpuset-mems": ("cpu", "mems", "str"),
    "pids-limit": ("pids", "limit", "int"), "blkio-weight": ("blockIO", "weight", "int"),
}


def _int(v, flag):
    try:
        return int(v, 0)
    except ValueError:
        raise OcirtError(f"invalid value {v!r} for --{flag}: not an integer") from None


def resources_from(o):
    res = {}
    if o["resources"] is not None:
        src = o["resources"]
        try:
            data = sys.stdin.read() if src == "-" else open(src).read()
        except OSError as e:
            raise OcirtError(f"--resources {src}: {e.strerror}") from None
        try:
            res = json.loads(data)
        except ValueError as e:
            raise OcirtError(f"--resources {src}: not valid JSON: {e}") from None
        if not isinstance(res, dict):
            raise OcirtError(f"--resources {src}: must be a JSON object (LinuxResources)")
        config.drop_nulls(res)
        config.fold_go_keys(res)
    for flag, (sec, field, kind) in _MAP.items():
        v = o[flag]
        if v is None:
            continue
        if kind == "ram":
            v = ram_bytes(v, flag)
        elif kind == "int":
            v = _int(v, flag)
        if sec == "pids":
            res["pids"] = {"limit": v}
        else:
            if not isinstance(res.get(sec), dict):
                res[sec] = {}
            res[sec][field] = v
    return res


def main(opts, argv):
    o, pos = FLAGS.parse(argv, interspersed=True)
    cid = need_id(pos, "update")
    res = resources_from(o)
    with Container.load(opts, cid, lock=True) as c:
        c.update(res, l3_cache_schema=o["l3-cache-schema"], mem_bw_schema=o["mem-bw-schema"])
