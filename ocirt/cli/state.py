import json
import sys

from ..lifecycle.query import state
from .args import Flags, need_id


def main(g, argv):
    _, pos = Flags({}).parse(argv)
    sys.stdout.write(json.dumps(state(need_id(pos, "state"), root=g["root"]), indent=2) + "\n")
