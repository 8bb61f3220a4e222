import os
import sys

from .. import jsonfast
from ..errors import OcirtError
from ..container import Container
from . import Flags
from ..lazy import pwd, state

FLAGS = Flags({"format": (("f",), str, "table"), "quiet": (("q",), bool, False)})
_JSON_ORDER = ("ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
               "annotations")


def main(opts, argv):
    o, pos = FLAGS.parse(argv, interspersed=True)
    if pos:
        raise OcirtError('"list" takes no arguments')
    out = sys.stdout
    if opts.root and not os.path.isdir(opts.root):
        # runc: a --root given that is not there is an error; the default may be missing
        raise OcirtError(f"--root {opts.root}: no such directory")
    if o["quiet"]:
        root = opts.state_root()
        out.write("".join(cid + "\n" for cid in state.list_ids(root)
                          if os.path.exists(os.path.join(root, cid, "state.json"))))
        return
    items = Container.all(opts)
    if o["format"] == "json":
        root = opts.state_root()
        # runc's field order (its list struct), owner included
        items = [{k: s[k] for k in _JSON_ORDER if k in s} | {
            "owner": s.get("owner") or _owner(root, s["id"])} for s in items]
        out.write(jsonfast.dumps(items, compact=True) + "\n")
    elif o["format"] == "table":
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        root = opts.state_root()
        rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"],
                  s.get("owner") or _owner(root, s["id"])) for s in items]
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            out.write("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
    else:
        raise OcirtError(f"invalid format {o['format']!r}: use table or json")


_names = {}


def _owner(root, cid):
    """The user owning the container's state dir (runc's OWNER column)."""
    try:
        uid = os.stat(os.path.join(root, cid)).st_uid
    except OSError:
        uid = os.geteuid()
    if uid not in _names:
        try:
            _names[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _names[uid] = str(uid)
    return _names[uid]
