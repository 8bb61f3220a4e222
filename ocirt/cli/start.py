from ..lifecycle.start import start
from .args import Flags, need_id


def main(g, argv):
    _, pos = Flags({}).parse(argv)
    start(need_id(pos, "start"), root=g["root"])
