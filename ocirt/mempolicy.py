"""linux.memoryPolicy (runtime-spec 1.3): the NUMA policy of the container's process,
set with set_mempolicy(2) just before execve (init and exec), so the workload's
allocations follow it.

parse() runs in the parent, before any process exists: every mode and flag the
kernel has, the node list (a cpuset-style list), the node count the mode needs, and
nodes the host lacks, each refused by its field. apply() is the one syscall.
"""
from .errors import ConfigError
from . import syscalls as sc

FIELD = "linux.memoryPolicy"
MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
         "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
FLAGS = {"MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14,
         "MPOL_F_STATIC_NODES": 1 << 15}
_NO_NODES = ("MPOL_DEFAULT", "MPOL_LOCAL")
_MAX_NODE = 1 << 16  # far above any kernel's MAX_NUMNODES (1024)


def parse(policy, field=FIELD):
    """(mode | flags, [node numbers]) for set_mempolicy, or None for no policy."""
    if policy is None:
        return None
    if not isinstance(policy, dict):
        raise ConfigError(field, "invalid memory policy: must be an object")
    mode = policy.get("mode")
    if mode is None:
        raise ConfigError(f"{field}.mode", "invalid memory policy mode: it is required")
    if mode not in MODES:
        raise ConfigError(f"{field}.mode", f"invalid memory policy mode {mode!r} (one of "
                          f"{', '.join(MODES)})")
    flags = 0
    for i, f in enumerate(policy.get("flags") or []):
        if f not in FLAGS:
            raise ConfigError(f"{field}.flags[{i}]", f"invalid memory policy flag {f!r} "
                              f"(one of {', '.join(FLAGS)})")
        flags |= FLAGS[f]
    if flags & FLAGS["MPOL_F_STATIC_NODES"] and flags & FLAGS["MPOL_F_RELATIVE_NODES"]:
        raise ConfigError(f"{field}.flags", "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES "
                          "exclude each other")
    nodes = _nodes(policy.get("nodes"), f"{field}.nodes")
    if mode in _NO_NODES and nodes:
        raise ConfigError(f"{field}.nodes", f"{mode} mode requires 0 nodes but got "
                          f"{len(nodes)}")
    if mode not in _NO_NODES and mode != "MPOL_PREFERRED" and not nodes:
        raise ConfigError(f"{field}.nodes", f"{mode} needs at least one node")
    if nodes and not flags & FLAGS["MPOL_F_RELATIVE_NODES"]:  # relative: any index
        have = host_nodes()
        missing = [n for n in nodes if have is not None and n not in have]
        if missing:
            raise ConfigError(f"{field}.nodes", f"invalid memory policy node {missing[0]}: "
                              f"this host has node(s) {_fmt(have)}")
    return MODES[mode] | flags, nodes


def _nodes(text, where):
    if text is None or text == "":
        return []
    if not isinstance(text, str):
        raise ConfigError(where, "invalid memory policy nodes: must be a string like \"0-3,7\"")
    out = set()
    try:
        for part in text.split(","):
            lo, dash, hi = part.strip().partition("-")
            lo = int(lo)
            hi = int(hi) if dash else lo
            if lo < 0 or hi < lo:
                raise ValueError
            if hi >= _MAX_NODE:
                raise ConfigError(where, f"invalid memory policy node {hi}: above any "
                                  "kernel's node count")
            out.update(range(lo, hi + 1))
    except ValueError:
        raise ConfigError(where, f"invalid memory policy nodes {text!r} (e.g. \"0-3,7\")") \
            from None
    return sorted(out)


def host_nodes():
    """The host's possible NUMA nodes, or None when it does not say."""
    try:
        with open("/sys/devices/system/node/possible") as f:
            return set(_nodes(f.read().strip(), "host"))
    except (OSError, ConfigError):
        return None


def _fmt(nodes):
    return ",".join(str(n) for n in sorted(nodes))


def apply(parsed, field=FIELD):
    """set_mempolicy(2) in the container's process."""
    if parsed is None:
        return
    mode, nodes = parsed
    try:
        sc.set_mempolicy(mode, nodes)
    except OSError as e:
        raise ConfigError(field, f"set_mempolicy: {e.strerror}") from None
