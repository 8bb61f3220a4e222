"""Reading a cgroup's figures: runc's `events --stats` data, and ocirt's usage summary.

The stats follow runc's types.Stats JSON (cpu, cpuset, memory, pids, blkio, hugetlb,
intel_rdt, network_interfaces), zero values omitted where runc omits them. The usage
summary is ocirt's own, small and stable (see docs/cgroups.md).
"""
import os

from . import fs

_MAXU64 = (1 << 64) - 1
_PAGE_MAX = 9223372036854771712  # v1's "unlimited" memory limit


def _nz(d):
    """Drop zero/empty values (Go's omitempty)."""
    return {k: v for k, v in d.items() if v not in (0, None, [], {}, "")}


def _ints(path):
    try:
        return [int(x) for x in fs.read(path).split()]
    except (OSError, ValueError):
        return []


def _cpulist(s):
    out = []
    for part in s.strip().split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def _mem_entry(d, prefix, limit_name="limit_in_bytes"):
    e = {"limit": fs.read_int(os.path.join(d, f"{prefix}.{limit_name}"), 0),
         "usage": fs.read_int(os.path.join(d, f"{prefix}.usage_in_bytes"), 0),
         "max": fs.read_int(os.path.join(d, f"{prefix}.max_usage_in_bytes"), 0),
         "failcnt": fs.read_int(os.path.join(d, f"{prefix}.failcnt"), 0)}
    out = {"limit": e["limit"]}
    out.update(_nz({"usage": e["usage"], "max": e["max"]}))
    out["failcnt"] = e["failcnt"]
    return out


def _blkio_v1(d, name):
    out = []
    try:
        data = fs.read(os.path.join(d, name))
    except OSError:
        return out
    for line in data.splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        mj, mn = parts[0].split(":")
        out.append(_nz({"major": int(mj), "minor": int(mn), "op": parts[1],
                        "value": int(parts[2])}))
    return out


def _cpuset(d):
    if not d:
        return {}
    def rd(n, default=0):
        return fs.read_int(os.path.join(d, n), default)
    try:
        cpus = _cpulist(fs.read(os.path.join(d, "cpuset.effective_cpus")))
        mems = _cpulist(fs.read(os.path.join(d, "cpuset.effective_mems")))
    except (OSError, ValueError):
        cpus, mems = [], []
    out = _nz({"cpus": cpus})
    out["cpu_exclusive"] = rd("cpuset.cpu_exclusive")
    out.update(_nz({"mems": mems}))
    for k in ("mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
              "memory_spread_slab", "memory_pressure", "sched_load_balance",
              "sched_relax_domain_level"):
        out[k] = rd(f"cpuset.{k}")
    return out


def v1_stats(dirs):
    """`dirs`: the v1 manager's {controller: dir}."""
    out = {}
    # cpu
    ca, cp = dirs.get("cpuacct"), dirs.get("cpu")
    usage = {}
    if ca:
        usage = _nz({
            "total": fs.read_int(os.path.join(ca, "cpuacct.usage"), 0),
            "percpu": _ints(os.path.join(ca, "cpuacct.usage_percpu")),
            "percpu_kernel": _ints(os.path.join(ca, "cpuacct.usage_percpu_sys")),
            "percpu_user": _ints(os.path.join(ca, "cpuacct.usage_percpu_user")),
        })
        usage["kernel"] = fs.read_int(os.path.join(ca, "cpuacct.usage_sys"), 0)
        usage["user"] = fs.read_int(os.path.join(ca, "cpuacct.usage_user"), 0)
    thr = {}
    if cp:
        s = fs.read_kv(os.path.join(cp, "cpu.stat"))
        thr = _nz({"periods": s.get("nr_periods", 0),
                   "throttledPeriods": s.get("nr_throttled", 0),
                   "throttledTime": s.get("throttled_time", 0)})
    out["cpu"] = {"usage": usage, "throttling": thr}
    out["cpuset"] = _cpuset(dirs.get("cpuset"))
    # memory
    m = dirs.get("memory")
    mem = {}
    if m:
        raw = fs.read_kv(os.path.join(m, "memory.stat"))
        mem = _nz({"cache": raw.get("cache", 0)})
        mem["usage"] = _mem_entry(m, "memory")
        mem["swap"] = _mem_entry(m, "memory.memsw")
        mem["kernel"] = _mem_entry(m, "memory.kmem")
        mem["kernelTCP"] = _mem_entry(m, "memory.kmem.tcp")
        if raw:
            mem["raw"] = raw
        oc = fs.read_kv(os.path.join(m, "memory.oom_control"))
        mem["event_count"] = _nz({"oom_kill": oc.get("oom_kill", 0)})
    out["memory"] = mem
    p = dirs.get("pids")
    out["pids"] = _nz({"current": fs.read_int(os.path.join(p, "pids.current"), 0),
                       "limit": fs.read_int(os.path.join(p, "pids.max"), 0)}) if p else {}
    b = dirs.get("blkio")
    blk = {}
    if b:
        blk = _nz({
            "ioServiceBytesRecursive": _blkio_v1(b, "blkio.throttle.io_service_bytes_recursive")
            or _blkio_v1(b, "blkio.bfq.io_service_bytes_recursive"),
            "ioServicedRecursive": _blkio_v1(b, "blkio.throttle.io_serviced_recursive")
            or _blkio_v1(b, "blkio.bfq.io_serviced_recursive"),
        })
    out["blkio"] = blk
    h = dirs.get("hugetlb")
    huge = {}
    if h:
        for size in _huge_sizes(h, ".limit_in_bytes"):
            e = _nz({"usage": fs.read_int(os.path.join(h, f"hugetlb.{size}.usage_in_bytes"), 0),
                     "max": fs.read_int(os.path.join(h, f"hugetlb.{size}.max_usage_in_bytes"),
                                        0)})
            e["failcnt"] = fs.read_int(os.path.join(h, f"hugetlb.{size}.failcnt"), 0)
            huge[size] = e
    out["hugetlb"] = huge
    out["intel_rdt"] = {}
    out["network_interfaces"] = None
    return out


def _huge_sizes(d, suffix):
    """Page sizes from hugetlb.<size><suffix> file names ('.limit_in_bytes', '.max')."""
    try:
        names = os.listdir(d)
    except OSError:
        return []
    out = []
    for n in names:
        parts = n.split(".")
        if len(parts) == 3 and parts[0] == "hugetlb" and "." + parts[2] == suffix:
            out.append(parts[1])
    return sorted(out)


def v2_stats(d):
    """`d`: the v2 manager's directory."""
    out = {}
    s = fs.read_kv(os.path.join(d, "cpu.stat"))
    usage = _nz({"total": s.get("usage_usec", 0) * 1000})
    usage["kernel"] = s.get("system_usec", 0) * 1000
    usage["user"] = s.get("user_usec", 0) * 1000
    thr = _nz({"periods": s.get("nr_periods", 0), "throttledPeriods": s.get("nr_throttled", 0),
               "throttledTime": s.get("throttled_usec", 0) * 1000})
    out["cpu"] = {"usage": usage, "throttling": thr}
    out["cpuset"] = _cpuset(d) if os.path.exists(os.path.join(d, "cpuset.cpus")) else {}
    mem = {}
    if os.path.exists(os.path.join(d, "memory.current")):
        raw = fs.read_kv(os.path.join(d, "memory.stat"))
        mem = _nz({"cache": raw.get("file", 0)})
        cur = fs.read_int(os.path.join(d, "memory.current"), 0)
        lim = fs.read_int(os.path.join(d, "memory.max"), _MAXU64)
        ev = fs.read_kv(os.path.join(d, "memory.events"))
        u = {"limit": lim}
        u.update(_nz({"usage": cur, "max": fs.read_int(os.path.join(d, "memory.peak"), 0)}))
        u["failcnt"] = ev.get("max", 0)
        mem["usage"] = u
        if os.path.exists(os.path.join(d, "memory.swap.current")):
            sc = fs.read_int(os.path.join(d, "memory.swap.current"), 0)
            sl = fs.read_int(os.path.join(d, "memory.swap.max"), _MAXU64)
            sw = {"limit": sl if sl == _MAXU64 or lim == _MAXU64 else sl + lim}
            sw.update(_nz({"usage": sc + cur,
                           "max": fs.read_int(os.path.join(d, "memory.swap.peak"), 0)}))
            sw["failcnt"] = fs.read_kv(os.path.join(d, "memory.swap.events")).get("max", 0)
            mem["swap"] = sw
        mem["kernel"] = {"limit": 0, "failcnt": 0}
        mem["kernelTCP"] = {"limit": 0, "failcnt": 0}
        if raw:
            mem["raw"] = raw
        mem["event_count"] = _nz({k: ev.get(k, 0) for k in
                                  ("low", "high", "max", "oom", "oom_kill")})
    out["memory"] = mem
    out["pids"] = _nz({"current": fs.read_int(os.path.join(d, "pids.current"), 0),
                       "limit": fs.read_int(os.path.join(d, "pids.max"), 0)})
    blk = {}
    sb, sv = [], []
    try:
        iost = fs.read(os.path.join(d, "io.stat"))
    except OSError:
        iost = ""
    for line in iost.splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        mj, mn = (int(x) for x in parts[0].split(":"))
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for key, op, lst in (("rbytes", "Read", sb), ("wbytes", "Write", sb),
                             ("rios", "Read", sv), ("wios", "Write", sv)):
            if key in kv:
                lst.append(_nz({"major": mj, "minor": mn, "op": op, "value": int(kv[key])}))
    blk = _nz({"ioServiceBytesRecursive": sb, "ioServicedRecursive": sv})
    out["blkio"] = blk
    huge = {}
    for size in _huge_sizes(d, ".max"):
        e = _nz({"usage": fs.read_int(os.path.join(d, f"hugetlb.{size}.current"), 0)})
        e["failcnt"] = fs.read_kv(os.path.join(d, f"hugetlb.{size}.events")).get("max", 0)
        huge[size] = e
    out["hugetlb"] = huge
    out["intel_rdt"] = {}
    out["network_interfaces"] = None
    return out


def _summary(cpu_total, cpu_user, cpu_kernel, peak, cur_mem, limit, oom_kills, oom_events,
             pids_cur, pids_peak, swap_peak=None):
    return {
        "cpu": {"total_ns": cpu_total, "user_ns": cpu_user, "kernel_ns": cpu_kernel},
        "memory": {"peak_bytes": peak, "current_bytes": cur_mem, "limit_bytes": limit,
                   "swap_peak_bytes": swap_peak},
        "oom_kills": oom_kills,
        "oom_events": oom_events,
        "pids": {"current": pids_cur, "peak": pids_peak},
    }


def v1_usage(dirs):
    ca, m, p = dirs.get("cpuacct"), dirs.get("memory"), dirs.get("pids")

    def rd(d, n):
        return fs.read_int(os.path.join(d, n)) if d else None
    oc = fs.read_kv(os.path.join(m, "memory.oom_control")) if m else {}
    lim = rd(m, "memory.limit_in_bytes")
    return _summary(rd(ca, "cpuacct.usage"), rd(ca, "cpuacct.usage_user"),
                    rd(ca, "cpuacct.usage_sys"), rd(m, "memory.max_usage_in_bytes"),
                    rd(m, "memory.usage_in_bytes"),
                    None if lim is None or lim >= _PAGE_MAX else lim,
                    oc.get("oom_kill", 0) if m else None,
                    rd(m, "memory.failcnt"), rd(p, "pids.current"), rd(p, "pids.peak"))


def v2_usage(d):
    s = fs.read_kv(os.path.join(d, "cpu.stat"))
    ev = fs.read_kv(os.path.join(d, "memory.events"))
    has_mem = os.path.exists(os.path.join(d, "memory.current"))

    def rd(n):
        return fs.read_int(os.path.join(d, n))
    us = s.get("usage_usec")
    return _summary(us * 1000 if us is not None else None,
                    s["user_usec"] * 1000 if "user_usec" in s else None,
                    s["system_usec"] * 1000 if "system_usec" in s else None,
                    rd("memory.peak"), rd("memory.current"), rd("memory.max"),
                    ev.get("oom_kill", 0) if has_mem else None,
                    ev.get("oom", 0) if has_mem else None,
                    rd("pids.current"), rd("pids.peak"), rd("memory.swap.peak"))
