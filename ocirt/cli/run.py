from . import Flags, need_id
from ..process import speed
from ..lazy import lifecycle_run

FLAGS = Flags({
    "bundle": (("b",), str, "."), "pid-file": ((), str, None),
    "console-socket": ((), str, None), "no-pivot": ((), bool, False),
    "no-new-keyring": ((), bool, False), "preserve-fds": ((), int, 0),
    "pidfd-socket": ((), str, None),
    "detach": (("d",), bool, False), "keep": ((), bool, False),
    "no-subreaper": ((), bool, False), "usage-file": ((), str, None),
})


def main(opts, argv, primer_fd=None):
    """`primer_fd`: the C front's cgroup primer (ocirt.main.from_front), or None."""
    speed.begin(opts, primer_fd)  # first: before the rest loads
    o, pos = FLAGS.parse(argv, interspersed=True)
    return lifecycle_run.run(need_id(pos, "run"), o["bundle"], opts=opts, detach=o["detach"],
               keep=o["keep"], pid_file=o["pid-file"], console_socket=o["console-socket"],
               no_pivot=o["no-pivot"], no_new_keyring=o["no-new-keyring"],
               preserve_fds=o["preserve-fds"], usage_file=o["usage-file"],
               pidfd_socket=o["pidfd-socket"])
