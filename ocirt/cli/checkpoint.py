"""ocirt checkpoint / restore: runc's flags are read and checked, then the verb is
refused in one line (ocirt has no CRIU support: docs/compat.md); the container is
left as it was."""
import os

from .. import state as statemod, status as S
from ..container import Container
from ..errors import OcirtError
from . import Flags, need_id

_COMMON = {
    "image-path": ((), str, None), "work-path": ((), str, None),
    "tcp-established": ((), bool, False), "tcp-skip-in-flight": ((), bool, False),
    "ext-unix-sk": ((), bool, False), "shell-job": ((), bool, False),
    "file-locks": ((), bool, False), "manage-cgroups-mode": ((), str, None),
    "empty-ns": ((), list, []), "auto-dedup": ((), bool, False),
    "lazy-pages": ((), bool, False), "status-fd": ((), str, None),
    "page-server": ((), str, None), "link-remap": ((), bool, False),
}
CHECKPOINT = Flags(dict(_COMMON, **{
    "leave-running": ((), bool, False), "parent-path": ((), str, None),
    "pre-dump": ((), bool, False),
}))
RESTORE = Flags(dict(_COMMON, **{
    "bundle": (("b",), str, None), "detach": (("d",), bool, False),
    "pid-file": ((), str, None), "console-socket": ((), str, None),
    "no-subreaper": ((), bool, False), "no-pivot": ((), bool, False),
    "lsm-profile": ((), str, None), "lsm-mount-context": ((), str, None),
}))
_MODES = ("soft", "full", "strict", "ignore")


def _check_common(o):
    m = o["manage-cgroups-mode"]
    if m is not None and m not in _MODES:
        raise OcirtError(f"--manage-cgroups-mode {m!r}: use one of {', '.join(_MODES)}")


def _refuse(verb):
    raise OcirtError(f"{verb} is not supported by ocirt (no CRIU checkpoint/restore); "
                     "the container is left as it was")


def checkpoint(opts, argv):
    o, pos = CHECKPOINT.parse(argv, interspersed=True)
    cid = need_id(pos, "checkpoint")
    c = Container.load(opts, cid)
    c.require(S.CHECKPOINT)
    _check_common(o)
    parent = o["parent-path"]
    if parent is not None:
        if os.path.isabs(parent):
            raise OcirtError(f"--parent-path {parent}: must be relative to --image-path")
        image = o["image-path"] or os.path.join(c.state.bundle, "checkpoint")
        if not os.path.isdir(os.path.join(image, parent)):
            raise OcirtError(f"--parent-path {parent}: no such directory under {image}")
    _refuse("checkpoint")


def restore(opts, argv):
    o, pos = RESTORE.parse(argv, interspersed=True)
    cid = need_id(pos, "restore")
    statemod.check_id(cid)
    _check_common(o)
    _refuse("restore")


def main(opts, argv):
    return checkpoint(opts, argv)
