from ..lifecycle.pause import resume
from .args import Flags, need_id


def main(g, argv):
    _, pos = Flags({}).parse(argv)
    resume(need_id(pos, "resume"), root=g["root"])
