from .. import rules
from ..container import Container
from ..errors import OcirtError
from . import Flags

FLAGS = Flags({"all": (("a",), bool, False)})


def main(opts, argv):
    o, pos = FLAGS.parse(argv)
    if not pos:
        raise OcirtError('"kill" requires a container id')
    if len(pos) > 2:
        raise OcirtError('"kill" takes a container id and an optional signal')
    Container.load(opts, pos[0]).signal(pos[1] if len(pos) > 1 else rules.DEFAULT_SIGNAL, o["all"])
