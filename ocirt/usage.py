"""A container's resource usage, read from its cgroup, which stays until delete:
so the figures are there, final, after the init has exited.

usage(state) -> {"cpu": {total_ns, user_ns, kernel_ns}, "memory": {peak_bytes,
current_bytes, limit_bytes}, "oom_kills", "oom_events", "pids": {current, peak}}
(None where the kernel has no such counter). See docs/cgroups.md.
"""
import os

from . import jsonfast
from .cgroups import restore
from .lazy import container


def usage(st):
    cg = st.cgroup
    if not cg:
        return None
    try:
        return restore(cg).usage()
    except OSError:
        return None


def verdict(st, status, timed_out=False, wall=None):
    """The judge's fields from init's exit status (128+N for signal N) and the cgroup's
    counters, read while the cgroup is still there."""
    u = usage(st) or {}
    cpu, mem, pids = u.get("cpu") or {}, u.get("memory") or {}, u.get("pids") or {}
    sig = status - 128 if status is not None and status > 128 else None
    kills = u.get("oom_kills")

    def sec(ns):
        return None if ns is None else ns / 1e9
    return {
        "exit_code": None if sig is not None else status,
        "signal": sig,
        "oom_killed": bool(kills),
        "timed_out": timed_out,
        "wall_time": wall,
        "cpu_user": sec(cpu.get("user_ns")),
        "cpu_system": sec(cpu.get("kernel_ns")),
        "peak_memory": mem.get("peak_bytes"),
        "peak_swap": mem.get("swap_peak_bytes"),
        "pids_peak": pids.get("peak"),
    }


def final_report(cid, root, status, wall=None):
    """What --usage-file gets: run_measured's fields (docs/api.md), then `id`,
    `exit_status` (128+N for signal N) and the cgroup's usage in detail."""
    c = container.Container.load(root, cid)
    out = verdict(c.state, status, False, wall)
    out["id"] = cid
    out["exit_status"] = status
    out.update(usage(c.state) or {})
    return out


def write_report(path, cid, root, status, wall=None):
    """ocirt run --usage-file F: after the container's process exits and before delete
    removes the cgroup, F gets final_report (atomically)."""
    path = os.path.abspath(path)
    rep = final_report(cid, root, status, wall)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(jsonfast.dumps(rep, indent=2) + "\n")
    os.rename(tmp, path)
