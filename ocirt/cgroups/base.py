"""What both drivers share: resource validation and planning helpers, and Manager,
the one interface over a container's cgroup (v1.py and v2.py implement it)."""
import errno
import os
import _signal

from ..errors import ConfigError, OcirtError
from . import fs
from ..lazy import cgroup_devices, systemd

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


THROTTLES = ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
             "throttleWriteIOPSDevice")


def blkio_fields(bio, f):
    """linux.resources.blockIO, range-checked, for either driver: (weight, leafWeight,
    [(where, major, minor, weight, leafWeight)] of weightDevice, [(index in THROTTLES,
    where, major, minor, rate)] of the throttle*Device lists)."""
    w = get_int(bio, "weight", f"{f}.weight", 0, 1000)
    lw = get_int(bio, "leafWeight", f"{f}.leafWeight", 0, 1000)
    if w and w < 10:
        raise ConfigError(f"{f}.weight", f"{w} is out of range: must be 10..1000")
    wdev = [(where, mj, mn, wt, get_int(bio["weightDevice"][i], "leafWeight",
                                        f"{where}.leafWeight", 0, 1000))
            for i, (where, mj, mn, wt) in enumerate(
                device_list(bio, "weightDevice", f, "weight", 0, 1000))]
    thr = []
    for i, key in enumerate(THROTTLES):
        for where, mj, mn, rate in device_list(bio, key, f, "rate", 0):
            if rate is None:
                raise ConfigError(f"{where}.rate", "is required")
            thr.append((i, where, mj, mn, rate))
    return w, lw, wdev, thr


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
    return _get_typed(sec, key, field, bool, "true or false")


def get_str(sec, key, field):
    return _get_typed(sec, key, field, str, "a string")


def _get_typed(sec, key, field, typ, what):
    """An optional field of type `typ`; None when absent."""
    v = sec.get(key)
    if v is not None and not isinstance(v, typ):
        raise ConfigError(field, f"must be {what}, not {v!r}")
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
    out = []
    for where, d in objects(sec.get(key), f"{field}.{key}"):
        mj = get_int(d, "major", f"{where}.major", 0)
        mn = get_int(d, "minor", f"{where}.minor", 0)
        if mj is None or mn is None:
            raise ConfigError(where, "needs major and minor")
        val = get_int(d, value_key, f"{where}.{value_key}", lo, hi)
        out.append((where, mj, mn, val))
    return out


def objects(v, field):
    """The array at `field` (None: absent) as [(each item's JSON path, item)], every
    item an object."""
    if v is None:
        return []
    if not isinstance(v, list):
        raise ConfigError(field, "must be an array")
    for i, x in enumerate(v):
        if not isinstance(x, dict):
            raise ConfigError(f"{field}[{i}]", "must be an object")
    return [(f"{field}[{i}]", x) for i, x in enumerate(v)]


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


def plan_hugetlb(need, res, field, limit_file, rsvd_file):
    """linux.resources.hugepageLimits -> writes of `limit_file` (and `rsvd_file` where
    the kernel has it), both formats of the page size name (v1's
    'hugetlb.{}.limit_in_bytes', v2's 'hugetlb.{}.max')."""
    ops = []
    for where, size, lim in hugepage_limits(res, field):
        d = need("hugetlb", where)
        ops.append(w(d, limit_file.format(size), lim, f"{where}.limit"))
        if os.path.exists(os.path.join(d, rsvd_file.format(size))):
            # reservations too (spec >= 1.1; Linux >= 5.7), as runc does
            ops.append(w(d, rsvd_file.format(size), lim, f"{where}.limit"))
    return ops


def hugepage_limits(res, field):
    limits = objects(res.get("hugepageLimits"), f"{field}.hugepageLimits")
    sizes = host_page_sizes() if limits else set()
    out = []
    for where, h in limits:
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


def check_before_update(d, usage_file, lim, f):
    """memory.checkBeforeUpdate: refuse a new limit below the cgroup's usage now."""
    if lim in (None, -1):
        return
    use = fs.read_int(os.path.join(d, usage_file), 0)
    if lim < use:
        raise ConfigError(f"{f}.limit", f"{lim} is below the current usage {use} "
                          "(checkBeforeUpdate)")


def pids_max(limit):
    """pids.max for linux.resources.pids.limit: -1 is "max"; 0 is 1, as runc writes it
    (systemd has no TasksMax=0; init alone fits either way)."""
    return limit if limit > 0 else ("max" if limit < 0 else 1)


# --- planning shared by both drivers: `need(controller, field)` -> the dir to write ---

def w(d, name, value, field):
    """One planned write (fs.write's arguments)."""
    return (fs.write, d, name, value, field)


def run(ops):
    for op in ops:
        op[0](*op[1:])


def plan_pids(need, res, field):
    pids = res.get("pids")
    if not pids:
        return []
    f = f"{field}.pids.limit"
    lim = get_int(pids, "limit", f, lo=0, allow_minus1=True)
    return [] if lim is None else [w(need("pids", f), "pids.max", pids_max(lim), f)]


def network(res, field):
    """linux.resources.network (an object), or None."""
    net = res.get("network")
    if net and not isinstance(net, dict):
        raise ConfigError(f"{field}.network", "must be an object")
    return net or None


def plan_rdma(need, res, field):
    rdma = res.get("rdma")
    if not rdma:
        return []
    f = f"{field}.rdma"
    if not isinstance(rdma, dict):
        raise ConfigError(f, "must be an object of device: limits")
    ops = []
    for dev, lim in rdma.items():
        where = f"{f}.{dev}"
        if not isinstance(lim, dict):
            raise ConfigError(where, "must be an object")
        h = get_int(lim, "hcaHandles", f"{where}.hcaHandles", 0, 0xFFFFFFFF)
        o = get_int(lim, "hcaObjects", f"{where}.hcaObjects", 0, 0xFFFFFFFF)
        if h is None and o is None:
            continue
        parts = [dev]
        if h is not None:
            parts.append(f"hca_handle={h}")
        if o is not None:
            parts.append(f"hca_object={o}")
        ops.append(w(need("rdma", where), "rdma.max", " ".join(parts), where))
    return ops


def unified(res, field):
    """linux.resources.unified (an object of file: value, each to be checked with
    check_unified_key), or {}."""
    uni = res.get("unified")
    if uni and not isinstance(uni, dict):
        raise ConfigError(f"{field}.unified", "must be an object of file: value")
    return uni or {}


def check_unified_key(k, v, f):
    if not isinstance(v, str):
        raise ConfigError(f"{f}.{k}", "must be a string")
    if "/" in k or k.startswith(".") or not k:
        raise ConfigError(f"{f}.{k}", "must name a file of the container's cgroup")
    if k.startswith("cgroup.") and k not in ("cgroup.max.depth", "cgroup.max.descendants",
                                              "cgroup.freeze", "cgroup.type"):
        raise ConfigError(f"{f}.{k}", "is cgroup core state, not a resource: refusing")


def device_rules(res, field, linux_devices, update):
    """The device rules to apply, or None when there is nothing to change (an update
    that does not name linux.resources.devices)."""
    if "devices" not in res or (res["devices"] is None and update):
        return None
    return cgroup_devices.rules_for(res, f"{field}.devices", linux_devices, update)


def not_empty_error(d):
    return OcirtError(f"linux.cgroupsPath: container's cgroup is not empty: {d} already holds "
                      "processes; a container needs a cgroup of its own")


def frozen_error(d, knob):
    """A cgroup someone froze before the container came (runc's wording leads)."""
    return ConfigError("linux.cgroupsPath", f"container's cgroup unexpectedly frozen: {d} "
                       f"({knob}); thaw it or choose another cgroupsPath")


# --- the manager ----------------------------------------------------------------------

class Manager:
    """A container's cgroup, one interface over both drivers (v1.V1Cgroup,
    v2.V2Cgroup): made by `create` (ocirt create, through cgroups.setup), or rebuilt
    from its record by cgroups.restore (every later verb); to_state() is that record
    (state.json's ocirt.cgroup, which the C front reads too: its format is fixed).

    `placement`: with --systemd-cgroup, the systemd scope the cgroup sits in
    (systemd.place's info, the record's "systemd"), else None. A move into the
    cgroup that the caller may not make (EACCES/EPERM: rootless, crossing a cgroup it
    does not own) is then asked of systemd, and destroy() stops the scope."""

    driver = None
    # What each driver defines (checked when it subclasses Manager):
    #   leaves()        the container's own dirs (one per hierarchy)
    #   sub_dirs(sub)   exec --cgroup's dirs below them (sub: cgroups.sub_cgroups())
    #   set(resources, field=RES)   apply a LinuxResources object (update)
    #   freeze(), thaw(), kill_all() (thaw if frozen, SIGKILL all until empty)
    #   stats()         runc's `events --stats` data; usage(): the final-usage summary
    #   oom_kills()     the cgroup's OOM kill count
    #   mount_in_container(target, opts, where)   a cgroup mount, in init
    #   plan(cfg, cid, path, mounts)   classmethod: paths and writes, validated,
    #                   nothing made yet; make() then makes them (_make_dirs())
    #   _frozen() (may raise OSError), _probe() (a leaf whose emptiness says no
    #   process is left, or None), _restore(record), _own_state() (the record's keys)
    DRIVER = ("plan", "leaves", "sub_dirs", "set", "freeze", "thaw", "kill_all", "stats",
              "usage", "oom_kills", "mount_in_container", "_make_dirs", "_frozen", "_probe",
              "_restore", "_own_state")

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        missing = [m for m in Manager.DRIVER if not hasattr(cls, m)]
        if missing:
            raise TypeError(f"{cls.__name__} lacks {', '.join(missing)}")

    def __init__(self, path):
        self.path = path            # the cgroup path inside its hierarchy
        self.created = []           # host dirs this container made, parents first
        self.cgroupns = False
        self.linux_devices = []
        self.placement = None
        self.made = True            # False from plan() until make() has succeeded
        self._ops = None            # plan()'s writes

    @classmethod
    def create(cls, cfg, cid, path, mounts=None):
        """plan() and make() in one."""
        self = cls.plan(cfg, cid, path, mounts)
        self.make()
        return self

    def make(self):
        """The dirs and writes plan() validated; on any failure, what this made goes.
        create does it after init is forked, so init's own set-up runs meanwhile."""
        if self.made:
            return
        try:
            self._make_dirs()
            run(self._ops)
        except BaseException:
            self._rollback()
            raise
        self.made, self._ops = True, None

    # --- the record --------------------------------------------------------------
    @classmethod
    def from_state(cls, d):
        self = cls(d.get("path"))
        self.created = d.get("created") or []
        self.cgroupns = d.get("cgroupns", False)
        self.linux_devices = d.get("linux_devices") or []
        self.placement = d.get("systemd")
        self._restore(d)
        return self

    def to_state(self):
        return {"driver": self.driver, "path": self.path, **self._own_state(),
                "created": self.created, "cgroupns": self.cgroupns,
                "linux_devices": self.linux_devices, "systemd": self.placement}

    def _init_from_config(self, linux):
        self.cgroupns = any(n.get("type") == "cgroup" for n in linux.get("namespaces") or [])
        self.linux_devices = [{k: x.get(k) for k in ("type", "major", "minor")}
                              for x in linux.get("devices") or [] if isinstance(x, dict)]

    # --- processes ---------------------------------------------------------------
    def apply(self, pid):
        """Move `pid` (create's intermediate, whom init inherits it from) in."""
        self.join(pid)

    def join(self, pid, sub=None):
        """Move `pid` into the container's cgroup(s), or, with `sub`
        (cgroups.sub_cgroups()), into a cgroup below it: `ocirt exec` puts its process
        there before the process joins the container's namespaces."""
        try:
            fs.add_pid(pid, self.sub_dirs(sub) if sub else self.leaves())
        except OcirtError as e:
            if self.placement is None or e.errno not in (errno.EACCES, errno.EPERM):
                raise
            # rootless --systemd-cgroup: the move crosses a cgroup the caller does not
            # own; systemd may make it (into the delegated scope)
            systemd.attach(self.placement, pid)

    def pids(self):
        out = set()
        for d in self.leaves():
            out.update(fs.procs(d))
        return sorted(out)

    def is_empty(self):
        """No process is left: one leaf read (the probe, which every process of the
        container is in) where the driver has one, else every leaf."""
        probe = self._probe()
        return not (fs.procs(probe) if probe else self.pids())

    def is_frozen(self):
        try:
            return self._frozen()
        except OSError:
            return False

    def signal_all(self, signum):
        """kill --all: SIGKILL through kill_all; any other signal with the cgroup frozen
        meanwhile (when it can be), so no fork escapes it."""
        if signum == _signal.SIGKILL:
            return self.kill_all()
        froze = False
        if not self.is_frozen():
            try:
                self.freeze()
                froze = True
            except (OcirtError, OSError):
                pass  # no freezer: signal them as they are
        try:
            fs.signal_pids(self.pids(), signum)
        finally:
            if froze:
                self.thaw()

    # --- removal -----------------------------------------------------------------
    def destroy(self):
        """Kill leftovers and rmdir the dirs this container created (never others);
        with a systemd placement, then stop the scope ocirt started."""
        if not self.made:
            return  # nothing is left of it, and a cgroup already there is not ours to empty
        try:
            fs.remove_dirs(self.created, set(self.leaves()), self._probe(),
                           self.kill_all)
        finally:
            if self.placement:
                systemd.stop(self.placement)

    def _rollback(self):
        """create failed: the dirs it made go (the placement is the caller's)."""
        fs.remove_created(self.created, set(self.leaves()))
        self.created = []
