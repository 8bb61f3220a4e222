"""The read-only verbs: state and a container's processes (list: Container.all)."""
import os

from .. import status as S
from ..lazy import cgroups


def state(c):
    return c.oci_state()


def processes(c):
    """Host pids of the container's processes; a stopped one has none (runc's answer,
    not an error)."""
    c.require(S.PS)
    return [] if c.status() == S.STOPPED else container_pids(c.state)


def container_pids(st):
    """Every process of the container: its cgroup's, or without one, those in init's
    pid namespace (or init and its descendants when it has none of its own)."""
    cg = st.cgroup
    if cg:
        return cgroups.restore(cg).pids()
    init = st.pid
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


