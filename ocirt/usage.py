"""A container's resource usage, read from its cgroup, which stays until delete:
so the figures are there, final, after the init has exited.

usage(state) -> {"cpu": {total_ns, user_ns, kernel_ns}, "memory": {peak_bytes,
current_bytes, limit_bytes}, "oom_kills", "oom_events", "pids": {current, peak}}
(None where the kernel has no such counter). See docs/cgroups.md.
"""
import os

from . import jsonfast


def usage(st):
    cg = st.cgroup
    if not cg:
        return None
    from . import cgroups
    try:
        return cgroups.usage(cg)
    except OSError:
        return None


def final_report(cid, root, status, wall=None):
    """What --usage-file gets: run_measured's fields (docs/api.md), then `id`,
    `exit_status` (128+N for signal N) and the cgroup's usage in detail."""
    from .lifecycle.measured import verdict
    from .container import Container
    c = Container.load(root, cid)
    out = verdict(c.state, status, False, wall)
    out["id"] = cid
    out["exit_status"] = status
    out.update(usage(c.state) or {})
    return out


def usage_writer(path, cid, root):
    """ocirt run --usage-file F: returns on_exit(status, wall), called after the
    container's process exits and before delete removes the cgroup."""
    path = os.path.abspath(path)

    def on_exit(status, wall=None):
        rep = final_report(cid, root, status, wall)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(jsonfast.dumps(rep, indent=2) + "\n")
        os.rename(tmp, path)
    on_exit.takes_wall = True
    return on_exit
