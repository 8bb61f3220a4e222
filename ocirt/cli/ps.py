"""ocirt ps [-f table|json] ID [-- PS_ARGS]: the host pids of a container's
processes; json is a JSON array (what containerd's shim parses), table is `ps`
output (default `ps -ef`) restricted to those pids (what `docker top` shows)."""
import json
import sys
import subprocess

from ..container import Container
from ..errors import OcirtError
from . import Flags

FLAGS = Flags({"format": (("f",), str, "table")})


def main(opts, argv):
    o, pos = FLAGS.parse(argv)
    if not pos:
        raise OcirtError('"ps" requires a container id')
    cid, ps_args = pos[0], pos[1:]
    if o["format"] not in ("table", "json"):
        raise OcirtError(f"invalid --format {o['format']!r}: use table or json")
    pids = Container.load(opts, cid).processes()
    if o["format"] == "json":
        sys.stdout.write(json.dumps(pids, separators=(",", ":")) + "\n")
        return 0
    try:
        p = subprocess.run(["ps"] + (ps_args or ["-ef"]), capture_output=True)
    except OSError as e:
        raise OcirtError(f"cannot run ps: {e.strerror}") from None
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        raise OcirtError(f"ps {' '.join(ps_args or ['-ef'])} failed"
                         + (f": {err[-1]}" if err else ""))
    lines = p.stdout.decode(errors="replace").splitlines()
    if not lines:
        raise OcirtError("ps printed nothing")
    header = lines[0].split()
    if "PID" not in header:
        raise OcirtError("couldn't find the PID field in ps output (ps args must include it)")
    col = header.index("PID")
    want = set(pids)
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split(None, col + 1)
        try:
            if int(fields[col]) in want:
                out.append(line)
        except (IndexError, ValueError):
            continue
    sys.stdout.write("\n".join(out) + "\n")
    return 0
