from ..container import Container
from . import Flags, need_id
from ..lazy import lifecycle_start


def main(opts, argv, start_error=None, start_stopped=False):
    _, pos = Flags({}).parse(argv)
    with Container.load(opts, need_id(pos, "start"), lock=True) as c:
        lifecycle_start.start(c, start_error, start_stopped)
