from ..container import Container
from ..errors import OcirtError
from . import Flags

FLAGS = Flags({"force": (("f",), bool, False)})


def main(opts, argv):
    o, pos = FLAGS.parse(argv, interspersed=True)
    if not pos:
        raise OcirtError('"delete" requires a container id')
    for cid in pos:
        Container.handle(opts, cid).delete(force=o["force"])
