from ..container import Container
from . import Flags, need_id


def main(opts, argv):
    _, pos = Flags({}).parse(argv)
    with Container.load(opts, need_id(pos, "pause"), lock=True) as c:
        c.pause()
