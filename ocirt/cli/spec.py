import json
import os

from ..errors import OcirtError
from ..specgen import default_spec
from . import Flags

FLAGS = Flags({"bundle": (("b",), str, "."), "rootless": ((), bool, False)})


def main(opts, argv):
    o, pos = FLAGS.parse(argv, interspersed=True)
    if pos:
        raise OcirtError('"spec" takes no arguments')
    path = os.path.join(o["bundle"], "config.json")
    if os.path.exists(path):
        raise OcirtError(f"file {path} exists: remove it first")
    spec = default_spec(o["rootless"], os.geteuid(), os.getegid())
    try:
        with open(path, "x") as f:
            json.dump(spec, f, indent="\t")
            f.write("\n")
    except OSError as e:
        raise OcirtError(f"cannot write {path}: {e.strerror}") from None
