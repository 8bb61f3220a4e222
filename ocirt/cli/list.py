import sys

from .. import jsonfast
from ..errors import OcirtError
from ..lifecycle.query import list_containers
from .args import Flags

FLAGS = Flags({"format": (("f",), str, "table"), "quiet": (("q",), bool, False)})


def main(g, argv):
    o, pos = FLAGS.parse(argv)
    if pos:
        raise OcirtError('"list" takes no arguments')
    items = list_containers(g["root"])
    out = sys.stdout
    if o["quiet"]:
        out.write("".join(s["id"] + "\n" for s in items))
    elif o["format"] == "json":
        out.write(jsonfast.dumps(items) + "\n")
    elif o["format"] == "table":
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        root = g["root"] or _default_root()
        rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"],
                  s.get("owner") or _owner(root, s["id"])) for s in items]
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            out.write("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
    else:
        raise OcirtError(f"invalid format {o['format']!r}: use table or json")


def _default_root():
    from ..state import default_root
    return default_root()


def _owner(root, cid):
    """The user owning the container's state dir (runc's OWNER column)."""
    import os
    import pwd
    try:
        uid = os.stat(os.path.join(root, cid)).st_uid
        return pwd.getpwuid(uid).pw_name
    except (OSError, KeyError):
        return "root" if not os.geteuid() else str(os.geteuid())
