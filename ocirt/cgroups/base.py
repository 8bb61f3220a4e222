"""What both drivers share: resource validation helpers, the Cgroup base class."""
import os

from ..errors import ConfigError, OcirtError
from . import fs

RES = "linux.resources"

# Every field of runtime-spec 1.2 LinuxResources, per section.
KNOWN = {
    "memory": {"limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness",
               "disableOOMKiller", "useHierarchy", "checkBeforeUpdate"},
    "cpu": {"shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod",
            "cpus", "mems", "idle"},
    "pids": {"limit"},
    "blockIO": {"weight", "leafWeight", "weightDevice", "throttleReadBpsDevice",
                "throttleWriteBpsDevice", "throttleReadIOPSDevice",
                "throttleWriteIOPSDevice"},
}
SECTIONS = {"memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "rdma",
            "unified", "devices"}


# Fields where 0 means "not set" (runc writes none of them when 0, and engines such
# as Docker send 0 for every field they do not set, e.g. on `docker update`).
ZERO_IS_UNSET = {
    "memory": ("limit", "reservation", "swap", "kernel", "kernelTCP"),
    "cpu": ("shares", "quota", "period", "realtimeRuntime", "realtimePeriod"),
    "blockIO": ("weight", "leafWeight"),
}


def check_sections(res, field):
    """`res` checked for unknown fields, with the zeros that mean "unset" left out
    (a copy: the caller's object is not changed)."""
    if res is None:
        return {}
    if not isinstance(res, dict):
        raise ConfigError(field, "must be an object")
    for k in res:
        if k not in SECTIONS:
            raise ConfigError(f"{field}.{k}", "is not a runtime-spec LinuxResources field"
                              " (refusing a limit ocirt does not know how to apply)")
    for sec, keys in KNOWN.items():
        v = res.get(sec)
        if v is None:
            continue
        if not isinstance(v, dict):
            raise ConfigError(f"{field}.{sec}", "must be an object")
        for k in v:
            if k not in keys:
                raise ConfigError(f"{field}.{sec}.{k}", "is not a runtime-spec field"
                                  " (refusing a limit ocirt does not know how to apply)")
    out = dict(res)
    for sec, keys in ZERO_IS_UNSET.items():
        v = out.get(sec)
        if v and any(v.get(k) == 0 and v.get(k) is not False for k in keys):
            out[sec] = {k: x for k, x in v.items()
                        if not (k in keys and x == 0 and x is not False)}
    return out


def memory_fields(mem, f):
    """linux.resources.memory, range-checked, for either driver: (limit, swap,
    reservation, kernel, kernelTCP, swappiness, disableOOMKiller, useHierarchy,
    checkBeforeUpdate), None where absent."""
    return (
        get_int(mem, "limit", f"{f}.limit", lo=0, allow_minus1=True),
        get_int(mem, "swap", f"{f}.swap", lo=0, allow_minus1=True),
        get_int(mem, "reservation", f"{f}.reservation", lo=0, allow_minus1=True),
        get_int(mem, "kernel", f"{f}.kernel", lo=0, allow_minus1=True),
        get_int(mem, "kernelTCP", f"{f}.kernelTCP", lo=0, allow_minus1=True),
        get_int(mem, "swappiness", f"{f}.swappiness", 0, 100),
        get_bool(mem, "disableOOMKiller", f"{f}.disableOOMKiller"),
        get_bool(mem, "useHierarchy", f"{f}.useHierarchy"),
        get_bool(mem, "checkBeforeUpdate", f"{f}.checkBeforeUpdate"),
    )


def cpu_fields(cpu, f, shares_range, rt_period_lo):
    """linux.resources.cpu, range-checked, for either driver: (shares, quota, period,
    burst, realtimeRuntime, realtimePeriod, idle, cpus, mems), None where absent."""
    return (
        get_int(cpu, "shares", f"{f}.shares", *shares_range),
        get_int(cpu, "quota", f"{f}.quota", lo=1000, allow_minus1=True),
        get_int(cpu, "period", f"{f}.period", 1000, 1000000),
        get_int(cpu, "burst", f"{f}.burst", 0),
        get_int(cpu, "realtimeRuntime", f"{f}.realtimeRuntime", lo=0, allow_minus1=True),
        get_int(cpu, "realtimePeriod", f"{f}.realtimePeriod", rt_period_lo),
        get_int(cpu, "idle", f"{f}.idle", 0, 1),
        cpuset_list(get_str(cpu, "cpus", f"{f}.cpus"), f"{f}.cpus"),
        cpuset_list(get_str(cpu, "mems", f"{f}.mems"), f"{f}.mems"),
    )


def get_int(sec, key, field, lo=None, hi=None, allow_minus1=False):
    """An optional integer field; None when absent."""
    v = sec.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(field, f"must be an integer, not {v!r}")
    if allow_minus1 and v == -1:
        return v
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise ConfigError(field, f"{v} is out of range: must be {rng}"
                          + (" (or -1 for no limit)" if allow_minus1 else ""))
    return v


def get_bool(sec, key, field):
    v = sec.get(key)
    if v is None:
        return None
    if not isinstance(v, bool):
        raise ConfigError(field, f"must be true or false, not {v!r}")
    return v


def get_str(sec, key, field):
    v = sec.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise ConfigError(field, f"must be a string, not {v!r}")
    return v


def cpuset_list(v, field):
    """Validate a cpuset list ("0-3,5"); '' means unset."""
    if v is None or v == "":
        return v
    for part in v.split(","):
        a, _, b = part.strip().partition("-")
        if not a.isdigit() or (b and not b.isdigit()) or (b and int(b) < int(a)):
            raise ConfigError(field, f"{v!r} is not a CPU/node list such as '0-3,5'")
    return v


def device_list(sec, key, field, value_key, lo=0, hi=None):
    """[{major, minor, <value_key>}] -> [(field, major, minor, value)]."""
    v = sec.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise ConfigError(f"{field}.{key}", "must be an array")
    out = []
    for i, d in enumerate(v):
        where = f"{field}.{key}[{i}]"
        if not isinstance(d, dict):
            raise ConfigError(where, "must be an object")
        mj = get_int(d, "major", f"{where}.major", 0)
        mn = get_int(d, "minor", f"{where}.minor", 0)
        if mj is None or mn is None:
            raise ConfigError(where, "needs major and minor")
        val = get_int(d, value_key, f"{where}.{value_key}", lo, hi)
        out.append((where, mj, mn, val))
    return out


_UNITS = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40, "PB": 1 << 50}


def page_size(s, field):
    """'2MB' -> bytes; the kernel's own spelling of hugetlb page sizes."""
    if not isinstance(s, str):
        raise ConfigError(field, f"must be a string such as '2MB', not {s!r}")
    num = s.rstrip("KMGTPB").strip()
    unit = s[len(num):]
    if not num.isdigit() or unit not in _UNITS:
        raise ConfigError(field, f"{s!r} is not a page size such as '2MB' or '1GB'")
    return int(num) * _UNITS[unit]


def host_page_sizes():
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except FileNotFoundError:
        return set()
    return {int(n[len("hugepages-"):-2]) * 1024 for n in names if n.endswith("kB")}


def size_name(nbytes):
    """Bytes -> the cgroup file spelling ('2MB', '1GB', '64KB')."""
    for unit in ("PB", "TB", "GB", "MB", "KB"):
        if nbytes % _UNITS[unit] == 0:
            return f"{nbytes // _UNITS[unit]}{unit}"
    return f"{nbytes}B"


def hugepage_limits(res, field):
    v = res.get("hugepageLimits")
    if v is None:
        return []
    if not isinstance(v, list):
        raise ConfigError(f"{field}.hugepageLimits", "must be an array")
    sizes = host_page_sizes()
    out = []
    for i, h in enumerate(v):
        where = f"{field}.hugepageLimits[{i}]"
        if not isinstance(h, dict):
            raise ConfigError(where, "must be an object")
        nbytes = page_size(h.get("pageSize"), f"{where}.pageSize")
        if nbytes not in sizes:
            have = ", ".join(size_name(s) for s in sorted(sizes)) or "none"
            raise ConfigError(f"{where}.pageSize", f"the kernel has no {h['pageSize']} huge "
                              f"pages (it has: {have})")
        lim = get_int(h, "limit", f"{where}.limit", 0)
        if lim is None:
            raise ConfigError(f"{where}.limit", "is required")
        if lim % nbytes:
            raise ConfigError(f"{where}.limit", f"{lim} is not a multiple of the page size "
                              f"{h['pageSize']} (the kernel would round it down)")
        out.append((where, size_name(nbytes), lim))
    return out


def pids_max(limit):
    """pids.max for linux.resources.pids.limit: -1 is "max"; 0 is 1, as runc writes it
    (systemd has no TasksMax=0; init alone fits either way)."""
    return limit if limit > 0 else ("max" if limit < 0 else 1)


def not_empty_error(d):
    return OcirtError(f"linux.cgroupsPath: container's cgroup is not empty: {d} already holds "
                      "processes; a container needs a cgroup of its own")


def frozen_error(d, knob):
    """A cgroup someone froze before the container came (runc's wording leads)."""
    return ConfigError("linux.cgroupsPath", f"container's cgroup unexpectedly frozen: {d} "
                       f"({knob}); thaw it or choose another cgroupsPath")


class Cgroup:
    """A container's cgroup as created in this process. Subclasses hold the
    driver specifics; to_state() is what later verbs get back."""

    driver = None

    def __init__(self, path):
        self.path = path            # the cgroup path inside its hierarchy
        self.created = []           # host dirs this container made, parents first
        self.cgroupns = False
        self.linux_devices = []
        self.systemd = None         # --systemd-cgroup: the scope (systemd.place's info)

    def remove(self, kill=True):
        from . import remove
        remove(self.to_state())

    def _rollback(self):
        st = self.to_state()
        leaves = ({st["dir"]} if st.get("driver") == "v2"
                  else {h[2] for h in st.get("hier") or []})
        fs.remove_created(self.created, leaves)
        self.created = []
