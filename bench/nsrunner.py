"""Times commands inside a private mount namespace without the cgroup v2
'unified' mount of this host's hybrid layout (crun 1.8 refuses that layout).

Started once as `unshare -m --propagation private <python> nsrunner.py`; reads
JSON requests {"id", "argv", "capture"} on stdin, one per line, runs each in its
own thread (so concurrent lifecycles stay concurrent) with the same
spawn.timed() the harness uses, and writes the JSON result lines on stdout.
So crun is timed without the cost of a per-command unshare + sh + umount
wrapper; that wrapper's cost is reported separately.
"""
import ctypes
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spawn import timed  # noqa: E402

UNIFIED = b"/sys/fs/cgroup/unified"


def main():
    libc = ctypes.CDLL(None, use_errno=True)
    if os.path.ismount(UNIFIED.decode()):
        if libc.umount2(UNIFIED, 2) != 0:  # MNT_DETACH
            e = ctypes.get_errno()
            sys.stdout.write(json.dumps({"ready": False, "err": os.strerror(e)}) + "\n")
            sys.stdout.flush()
            return 1
    lock = threading.Lock()
    out = sys.stdout

    def handle(req):
        r = timed(req["argv"], capture=req.get("capture", True))
        r["id"] = req["id"]
        line = json.dumps(r) + "\n"
        with lock:
            out.write(line)
            out.flush()

    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        if line.strip():
            threading.Thread(target=handle, args=(json.loads(line),), daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
