from ..lifecycle.kill import kill
from ..errors import OcirtError
from .args import Flags

FLAGS = Flags({"all": (("a",), bool, False)})


def main(g, argv):
    o, pos = FLAGS.parse(argv)
    if not pos:
        raise OcirtError('"kill" requires a container id')
    if len(pos) > 2:
        raise OcirtError('"kill" takes a container id and an optional signal')
    kill(pos[0], pos[1] if len(pos) > 1 else "SIGTERM", all_processes=o["all"], root=g["root"])
