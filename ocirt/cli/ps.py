"""ocirt ps [-f table|json] ID [-- PS_ARGS]: the host pids of a container's
processes; json is a JSON array (what containerd's shim parses), table is `ps`
output (default `ps -ef`) restricted to those pids (what `docker top` shows)."""
import json
import os
import sys

from .. import state as statemod
from ..errors import OcirtError
from .args import Flags

FLAGS = Flags({"format": (("f",), str, "table")})


def container_pids(st):
    """Every process of the container: its cgroup's, or without one, those in init's
    pid namespace (or init and its descendants when it has none of its own)."""
    cg = st.get("x_cgroup")
    if cg:
        from .. import cgroups
        return sorted(cgroups.pids(cg))
    init = st["pid"]
    try:
        init_ns = os.stat(f"/proc/{init}/ns/pid").st_ino
        host_ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return []
    children = {}
    found = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        pid = int(e)
        try:
            if init_ns != host_ns:
                if os.stat(f"/proc/{pid}/ns/pid").st_ino == init_ns:
                    found.append(pid)
                continue
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
            ppid = int(data[data.rindex(b")") + 2:].split()[1])
            children.setdefault(ppid, []).append(pid)
        except (OSError, ValueError):
            continue
    if init_ns != host_ns:
        return sorted(found)
    out, todo = [], [init]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return sorted(out)


def main(g, argv):
    o, pos = FLAGS.parse(argv)
    if not pos:
        raise OcirtError('"ps" requires a container id')
    cid, ps_args = pos[0], pos[1:]
    if o["format"] not in ("table", "json"):
        raise OcirtError(f"invalid --format {o['format']!r}: use table or json")
    c = statemod.Container(g["root"] or statemod.default_root(), cid)
    st = c.load()
    # a stopped container has no processes: an empty list (runc's answer), not an error
    pids = [] if c.status() == "stopped" else container_pids(st)
    if o["format"] == "json":
        sys.stdout.write(json.dumps(pids, separators=(",", ":")) + "\n")
        return 0
    import subprocess
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
