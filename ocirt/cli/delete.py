from ..lifecycle.delete import delete
from ..errors import OcirtError
from .args import Flags

FLAGS = Flags({"force": (("f",), bool, False)})


def main(g, argv):
    o, pos = FLAGS.parse(argv, interspersed=True)
    if not pos:
        raise OcirtError('"delete" requires a container id')
    for cid in pos:
        delete(cid, force=o["force"], root=g["root"])
