import sys

from .. import jsonfast, status as S
from ..container import Container
from . import Flags, need_id
from ..lazy import usage


def main(opts, argv):
    _, pos = Flags({}).parse(argv)
    c = Container.load(opts, need_id(pos, "state"))
    out = c.oci_state()
    if out["status"] == S.STOPPED:
        # ocirt extension: the cgroup's final figures (live ones: events --stats)
        u = usage.usage(c.state)
        if u is not None:
            out["x-ocirt-usage"] = u
    sys.stdout.write(jsonfast.dumps(out, indent=2) + "\n")
