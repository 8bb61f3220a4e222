from ..lifecycle.pause import pause
from .args import Flags, need_id


def main(g, argv):
    _, pos = Flags({}).parse(argv)
    pause(need_id(pos, "pause"), root=g["root"])
