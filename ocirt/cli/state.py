import sys

from .. import jsonfast
from ..lifecycle.query import state
from .args import Flags, need_id


def main(g, argv):
    _, pos = Flags({}).parse(argv)
    cid = need_id(pos, "state")
    out = state(cid, root=g["root"])
    if out["status"] == "stopped":
        # ocirt extension: the cgroup's final figures (live ones: events --stats)
        from ..usage import usage_of
        u = usage_of(cid, g["root"])
        if u is not None:
            out["x-ocirt-usage"] = u
    sys.stdout.write(jsonfast.dumps(out, indent=2) + "\n")
