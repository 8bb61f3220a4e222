"""ocirt events [--stats] [--interval D] ID: runc's JSON events, one per line:
{"type":"stats","id":ID,"data":{...}} and {"type":"oom","id":ID}.

--stats prints one stats event and exits; on a stopped (not yet deleted) container
it prints the final figures, which the cgroup keeps until delete.
Without --stats: a stats event every interval (default 5s), an oom event as soon as
the kernel OOM-kills a process of the container, until the container stops."""
import json
import re
import sys
import time

from .. import status as S
from ..container import Container
from ..errors import OcirtError
from . import Flags, need_id
from ..cgroups import restore

FLAGS = Flags({"stats": ((), bool, False), "interval": ((), str, "5s")})
_DUR = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_SCALE = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def duration(s):
    """Go's time.ParseDuration subset: '5s', '100ms', '1m30s'."""
    pos, total = 0, 0.0
    s = s.strip()
    if s.isdigit():
        raise OcirtError(f"invalid --interval {s!r}: give a unit, e.g. 5s or 500ms")
    for m in _DUR.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _SCALE[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise OcirtError(f"invalid --interval {s!r}: use a duration like 5s or 500ms")
    if total <= 0:
        raise OcirtError("--interval must be positive")
    return total


def _emit(ev):
    sys.stdout.write(json.dumps(ev, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main(opts, argv):
    o, pos = FLAGS.parse(argv, interspersed=True)
    cid = need_id(pos, "events")
    interval = duration(o["interval"])
    c = Container.load(opts, cid)
    cg = c.state.cgroup
    if not cg:
        raise OcirtError(f"container {cid} has no cgroup")
    cg = restore(cg)

    def stats():
        try:
            return {"type": "stats", "id": cid, "data": cg.stats()}
        except FileNotFoundError:
            raise OcirtError(f"container {cid} does not exist") from None

    try:
        if o["stats"]:
            _emit(stats())
            return 0
        if c.status() == S.STOPPED:
            raise OcirtError(f"container {cid}: container not running")
        ooms = cg.oom_kills()
        next_stats = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_stats:
                _emit(stats())
                next_stats = now + interval
            n = cg.oom_kills()
            if n > ooms:
                for _ in range(n - ooms):
                    _emit({"type": "oom", "id": cid})
                ooms = n
            try:
                c.rec.load()
            except OcirtError:
                return 0  # deleted
            if c.status() == S.STOPPED:
                n = cg.oom_kills()
                for _ in range(max(0, n - ooms)):
                    _emit({"type": "oom", "id": cid})
                return 0
            time.sleep(min(0.1, max(0.0, next_stats - time.monotonic())) or 0.01)
    except BrokenPipeError:
        return 0
