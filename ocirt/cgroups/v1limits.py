"""cgroup v1's memory, cpu and blockIO limits: linux.resources validated into ordered
writes (v1.plan calls these, loading this module only for a config that has such a
limit), and the writes that need more than one file or a read back."""
import os

from ..errors import ConfigError
from . import base, fs
from .base import w as _w


def plan_memory(need, mem, f, update):
    ops = []
    lim, swap, resv, kern, ktcp, swp, oom, hier, check = base.memory_fields(mem, f)
    if lim == 0:
        lim = None  # runc: 0 = not set
    if swap == 0:
        swap = None
    if swap is not None and swap != -1 and lim is not None and lim != -1 and swap < lim:
        raise ConfigError(f"{f}.swap", f"{swap} is below memory.limit {lim}: swap is the "
                          "total of memory and swap, so it must be at least the limit")
    d = None
    if any(x is not None for x in (lim, swap, resv, kern, ktcp, swp, oom, hier)):
        d = need("memory", f)
    if lim is not None or swap is not None:
        ops.append((_set_mem_swap, d, lim, swap, f, check and update))
    if resv:
        ops.append(_w(d, "memory.soft_limit_in_bytes", resv, f"{f}.reservation"))
    if kern:
        ops.append((_write_checked, d, "memory.kmem.limit_in_bytes", kern, f"{f}.kernel"))
    if ktcp:
        ops.append((_write_checked, d, "memory.kmem.tcp.limit_in_bytes", ktcp,
                    f"{f}.kernelTCP"))
    if swp is not None:
        ops.append(_w(d, "memory.swappiness", swp, f"{f}.swappiness"))
    if oom is not None and (oom or update):
        ops.append(_w(d, "memory.oom_control", int(oom), f"{f}.disableOOMKiller"))
    if hier is not None:
        ops.append(_w(d, "memory.use_hierarchy", int(hier), f"{f}.useHierarchy"))
    return ops


def _set_mem_swap(d, lim, swap, f, check):
    if check:
        base.check_before_update(d, "memory.usage_in_bytes", lim, f)
    memsw = os.path.join(d, "memory.memsw.limit_in_bytes")
    if swap is not None and not os.path.exists(memsw):
        raise ConfigError(f"{f}.swap", "the kernel has no swap accounting "
                          "(memory.memsw.limit_in_bytes is missing: swapaccount=0?)")
    if lim is not None and swap is None and os.path.exists(memsw):
        # Like runc: without an explicit swap, a new limit leaves swap unlimited-relative
        # only if memsw allows it; memsw must never drop below the limit.
        cur_sw = fs.read_int(memsw)
        if cur_sw is not None and lim != -1 and cur_sw < lim:
            swap = lim
        elif lim == -1:
            swap = -1  # unlimited memory with a swap limit left would be refused (runc)
    # The kernel wants memsw >= limit at every moment: order the two writes.
    cur = fs.read_int(os.path.join(d, "memory.limit_in_bytes"))
    raising = lim == -1 or (lim is not None and cur is not None and lim > cur)
    if swap is not None and (raising or lim is None):
        fs.write(d, "memory.memsw.limit_in_bytes", swap, f"{f}.swap")
        swap = None
    if lim is not None:
        fs.write(d, "memory.limit_in_bytes", lim, f"{f}.limit")
    if swap is not None:
        fs.write(d, "memory.memsw.limit_in_bytes", swap, f"{f}.swap")


def _write_checked(d, name, value, field):
    """Write a byte limit and read it back: since Linux 5.x, memory.kmem.limit_in_bytes
    accepts any write and keeps no limit; that must not pass as applied."""
    fs.write(d, name, value, field)
    got = fs.read_int(os.path.join(d, name))
    if value == -1:
        ok = got is not None and got >= _UNLIMITED
    else:
        ok = got is not None and abs(got - value) < 65536
    if not ok:
        raise ConfigError(field, f"the kernel accepted {value} for {name} but keeps {got}: "
                          "it does not enforce this limit (kernel memory limits are gone "
                          "since Linux 5.x); refusing rather than ignoring it")


_UNLIMITED = 9223372036854771712


def plan_cpu(need, cpu, f):
    ops = []
    shares, quota, period, burst, rtr, rtp, idle, cpus, mems = base.cpu_fields(
        cpu, f, (0,), 1)
    if shares:
        d = need("cpu", f"{f}.shares")
        ops.append((_set_shares, d, shares, f"{f}.shares"))
    if period or quota:
        d = need("cpu", f"{f}.quota" if quota else f"{f}.period")
        ops.append((_set_quota, d, quota, period, f))
    if burst is not None:
        ops.append(_w(need("cpu", f"{f}.burst"), "cpu.cfs_burst_us", burst, f"{f}.burst"))
    if rtp:
        ops.append(_w(need("cpu", f"{f}.realtimePeriod"), "cpu.rt_period_us", rtp,
                      f"{f}.realtimePeriod"))
    if rtr:
        ops.append(_w(need("cpu", f"{f}.realtimeRuntime"), "cpu.rt_runtime_us", rtr,
                      f"{f}.realtimeRuntime"))
    if idle is not None:
        ops.append(_w(need("cpu", f"{f}.idle"), "cpu.idle", idle, f"{f}.idle"))
    if cpus:
        ops.append(_w(need("cpuset", f"{f}.cpus"), "cpuset.cpus", cpus, f"{f}.cpus"))
    if mems:
        ops.append(_w(need("cpuset", f"{f}.mems"), "cpuset.mems", mems, f"{f}.mems"))
    return ops


def _set_shares(d, shares, field):
    fs.write(d, "cpu.shares", shares, field)
    got = fs.read_int(os.path.join(d, "cpu.shares"))
    if got != shares:
        raise ConfigError(field, f"the kernel clamped {shares} to {got} "
                          "(cpu.shares must be between 2 and 262144)")


def _set_quota(d, quota, period, f):
    # The kernel checks quota against the current period: try period first, then
    # the other way round.
    try:
        if period:
            fs.write(d, "cpu.cfs_period_us", period, f"{f}.period")
        if quota:
            fs.write(d, "cpu.cfs_quota_us", quota, f"{f}.quota")
    except ConfigError:
        if not (quota and period):
            raise
        fs.write(d, "cpu.cfs_quota_us", quota, f"{f}.quota")
        fs.write(d, "cpu.cfs_period_us", period, f"{f}.period")


def plan_blkio(need, bio, f):
    ops = []
    w, lw, wdev, thr = base.blkio_fields(bio, f)
    if w:
        d = need("blkio", f"{f}.weight")
        ops.append((_blkio_write, d, ("blkio.weight", "blkio.bfq.weight"), w, f"{f}.weight"))
    if lw:
        d = need("blkio", f"{f}.leafWeight")
        ops.append((_blkio_write, d, ("blkio.leaf_weight",), lw, f"{f}.leafWeight"))
    for where, mj, mn, wt, lwt in wdev:
        d = need("blkio", where)
        if wt is not None:
            ops.append((_blkio_write, d, ("blkio.weight_device", "blkio.bfq.weight_device"),
                        f"{mj}:{mn} {wt}", f"{where}.weight"))
        if lwt is not None:
            ops.append((_blkio_write, d, ("blkio.leaf_weight_device",), f"{mj}:{mn} {lwt}",
                        f"{where}.leafWeight"))
    for i, where, mj, mn, rate in thr:
        ops.append(_w(need("blkio", where), _THROTTLE_FILES[i], f"{mj}:{mn} {rate}",
                      f"{where}.rate"))
    return ops


_THROTTLE_FILES = ("blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
                   "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device")


def _blkio_write(d, names, value, field):
    """The first of `names` the kernel has (CFQ's blkio.weight, else BFQ's)."""
    for n in names:
        if os.path.exists(os.path.join(d, n)):
            return fs.write(d, n, value, field)
    raise ConfigError(field, f"the kernel has none of {', '.join(names)} in {d} "
                      "(no I/O scheduler with cgroup weights for this field)")
