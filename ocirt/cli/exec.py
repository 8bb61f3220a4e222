"""ocirt exec [options] ID [COMMAND [ARGS...]] (runc's flags)."""
from ..errors import OcirtError
from . import Flags
from ..process import speed
from ..lazy import lifecycle_exec

FLAGS = Flags({
    "process": (("p",), str, None), "tty": (("t",), bool, False),
    "detach": (("d",), bool, False), "pid-file": ((), str, None),
    "console-socket": ((), str, None), "env": (("e",), list, []),
    "cwd": ((), str, None), "user": (("u",), str, None),
    "additional-gids": (("g",), list, []), "cap": (("c",), list, []),
    "no-new-privs": ((), bool, False), "preserve-fds": ((), int, 0),
    "apparmor": ((), str, None), "process-label": ((), str, None),
    "ignore-paused": ((), bool, False), "pidfd-socket": ((), str, None),
    "cgroup": ((), list, []),
})


def main(opts, argv, primer_fd=None):
    """`primer_fd`: the C front's cgroup primer (ocirt.main.from_front), or None."""
    speed.begin(opts, primer_fd)  # first: before the rest loads
    o, pos = FLAGS.parse(argv)
    if not pos:
        raise OcirtError('"exec" requires a container id')
    if o["preserve-fds"] < 0:
        raise OcirtError("--preserve-fds must not be negative")
    gids = []
    for item in o["additional-gids"]:
        gids.extend(x for x in item.split(",") if x)
    return lifecycle_exec.exec_process(pos[0], opts, args=pos[1:], process_file=o["process"],
                        tty=o["tty"], detach=o["detach"], pid_file=o["pid-file"],
                        console_socket=o["console-socket"], env=o["env"], cwd=o["cwd"],
                        user=o["user"], additional_gids=gids, caps=o["cap"],
                        no_new_privs=o["no-new-privs"], preserve_fds=o["preserve-fds"],
                        apparmor=o["apparmor"], process_label=o["process-label"],
                        ignore_paused=o["ignore-paused"], sub_cgroups=o["cgroup"],
                        pidfd_socket=o["pidfd-socket"])
