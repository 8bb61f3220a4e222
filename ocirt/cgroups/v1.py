"""The cgroup v1 driver: one directory per mounted hierarchy (plus the cgroup2
hierarchy in hybrid mode, like runc), resources written to each controller's files."""
import os
import _signal as signal

from .. import syscalls as sc
from ..errors import ConfigError, OcirtError
from . import base, fs
from .base import RES, pids_max as _pids_max


def hierarchies(own=None, mounts=None):
    """[(key, controllers, mountpoint, mount_root)]: key is the name in
    /proc/self/cgroup ('cpu,cpuacct', 'name=systemd'; '' for the cgroup2 one).
    `own`, `mounts`: fs.own_cgroups() and fs.cgroup_mounts(), if already read."""
    if own is None:
        own = fs.own_cgroups()
    if mounts is None:
        mounts = fs.cgroup_mounts()
    out = []
    for key in own:
        if key == "":
            m = next((m for m in mounts if m[0] == "cgroup2"), None)
            if m is not None:
                out.append(("", [], m[1], m[2]))
            continue
        names = set(key.split(","))
        for t, mp, root, sopts in mounts:
            if t == "cgroup" and names <= set(sopts.split(",")):
                out.append((key, [n for n in key.split(",") if not n.startswith("name=")],
                            mp, root))
                break
    return out


class V1Cgroup(base.Cgroup):
    driver = "v1"

    def __init__(self, path):
        super().__init__(path)
        self.dirs = {}      # controller name (or 'name=systemd', or '' unified) -> dir
        self.hier = []      # [(key, mountpoint basename, dir)]

    # --- creation ------------------------------------------------------------
    @classmethod
    def create(cls, cfg, cid, path, mounts=None):
        linux = cfg.get("linux") or {}
        res = base.check_sections(linux.get("resources"), RES)
        if path:
            rel = not path.startswith("/")
            cgpath = fs.clean_path(path)
        else:
            rel, cgpath = False, f"/ocirt/{cid}"
        own = fs.own_cgroups()
        self = cls(cgpath if not rel else path)
        self.cgroupns = any(n.get("type") == "cgroup" for n in linux.get("namespaces") or [])
        self.linux_devices = [{k: x.get(k) for k in ("type", "major", "minor")}
                              for x in linux.get("devices") or [] if isinstance(x, dict)]
        self._mounts = []
        for key, ctrls, mp, root in hierarchies(own, mounts):
            self._mounts.append((key, ctrls, root, mp))
            p = fs.clean_path(own[key] + "/" + path) if rel else cgpath
            d = fs.under_mount(mp, root, p)
            self.hier.append((key, os.path.basename(mp), d))
            for c in ctrls or [key]:
                self.dirs[c] = d
        ops = self.plan(res, RES, linux_devices=linux.get("devices"))
        try:
            self._make_dirs()
            self.run(ops)
        except BaseException:
            self._rollback()
            raise
        return self

    def _make_dirs(self):
        for key, _, d in self.hier:
            new = _mkdirs(d)
            self.created.extend(new)
            if "cpuset" in key.split(","):
                # every level from the hierarchy root down needs cpus and mems (a parent
                # made empty by someone else too, as runc does), or no task may join
                mp = next(m for k, _, _, m in self._mounts if k == key)
                chain, cur = [], d
                while cur != mp and cur.startswith(mp + "/"):
                    chain.append(cur)
                    cur = os.path.dirname(cur)
                for nd in reversed(chain):
                    _cpuset_inherit(nd)
            if "freezer" in key.split(",") and \
                    fs.read(os.path.join(d, "freezer.state")).strip() != "THAWED":
                raise base.frozen_error(d, "freezer.state")
            if not new and fs.procs(d, recursive=False):
                raise base.not_empty_error(d)

    def add_pid(self, pid):
        for _, _, d in self.hier:
            try:
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
            except OSError as e:
                raise OcirtError(f"cannot move pid {pid} into cgroup {d}: {e.strerror}") \
                    from None

    def to_state(self):
        return {"driver": "v1", "path": self.path, "dirs": self.dirs,
                "hier": self.hier, "created": self.created, "cgroupns": self.cgroupns,
                "linux_devices": self.linux_devices, "systemd": self.systemd}

    # --- resources -------------------------------------------------------------
    def _need(self, ctrl, field):
        d = self.dirs.get(ctrl)
        if d is None:
            raise ConfigError(field, f"cgroup v1 controller {ctrl} is not mounted on this "
                              f"host (no {ctrl} hierarchy in /proc/self/cgroup)")
        return d

    def plan(self, res, field, linux_devices=None, update=False):
        """Validate everything first; return the ordered writes [(fn, args)]."""
        return plan(self.dirs, res, field, linux_devices, update)

    def run(self, ops):
        for op in ops:
            op[0](*op[1:])

    # --- in the container --------------------------------------------------------
    def mount_in_container(self, target, opts, where):
        mount_v1(self, target, opts, where)


# --- planning: validation, then writes ----------------------------------------------

def _w(d, name, value, field):
    return (fs.write, d, name, value, field)


def plan(dirs, res, field, linux_devices=None, update=False):
    res = base.check_sections(res, field)
    ops = []

    def need(ctrl, f):
        d = dirs.get(ctrl)
        if d is None:
            raise ConfigError(f, f"cgroup v1 controller {ctrl} is not mounted on this host"
                              f" (no {ctrl} hierarchy in /proc/self/cgroup)")
        return d

    mem = res.get("memory") or {}
    if mem:
        ops += _plan_memory(need, mem, f"{field}.memory", update)
    cpu = res.get("cpu") or {}
    if cpu:
        ops += _plan_cpu(need, cpu, f"{field}.cpu")
    pids = res.get("pids")
    if pids:
        f = f"{field}.pids.limit"
        lim = base.get_int(pids, "limit", f, allow_minus1=True, lo=0)
        if lim is not None:
            ops.append(_w(need("pids", f), "pids.max", _pids_max(lim), f))
    bio = res.get("blockIO") or {}
    if bio:
        ops += _plan_blkio(need, bio, f"{field}.blockIO")
    for where, size, lim in base.hugepage_limits(res, field):
        d = need("hugetlb", f"{where}")
        ops.append(_w(d, f"hugetlb.{size}.limit_in_bytes", lim, f"{where}.limit"))
        if os.path.exists(os.path.join(d, f"hugetlb.{size}.rsvd.limit_in_bytes")):
            # reservations too (spec >= 1.1; Linux >= 5.7), as runc does
            ops.append(_w(d, f"hugetlb.{size}.rsvd.limit_in_bytes", lim, f"{where}.limit"))
    net = res.get("network")
    if net:
        if not isinstance(net, dict):
            raise ConfigError(f"{field}.network", "must be an object")
        f = f"{field}.network.classID"
        cid = base.get_int(net, "classID", f, 0, 0xFFFFFFFF)
        if cid is not None:
            ops.append(_w(need("net_cls", f), "net_cls.classid", cid, f))
        for i, p in enumerate(net.get("priorities") or []):
            f = f"{field}.network.priorities[{i}]"
            name = base.get_str(p, "name", f"{f}.name")
            prio = base.get_int(p, "priority", f"{f}.priority", 0, 0xFFFFFFFF)
            if not name or prio is None:
                raise ConfigError(f, "needs name and priority")
            ops.append(_w(need("net_prio", f), "net_prio.ifpriomap", f"{name} {prio}", f))
    rdma = res.get("rdma")
    if rdma:
        ops += _plan_rdma(need, rdma, f"{field}.rdma", "rdma.max")
    uni = res.get("unified")
    if uni:
        f = f"{field}.unified"
        if not isinstance(uni, dict):
            raise ConfigError(f, "must be an object of file: value")
        d = dirs.get("")
        if d is None:
            raise ConfigError(f, "is for cgroup v2, and this host runs cgroup v1 without a"
                              " cgroup2 hierarchy")
        for k, v in uni.items():
            _check_unified_key(k, v, f)
            if not os.path.exists(os.path.join(d, k)):
                raise ConfigError(f"{f}.{k}", f"invalid configuration: {k} is not in the "
                                  "cgroup v2 hierarchy of this hybrid host (its controllers "
                                  "are cgroup v1's: use the v1 fields)")
            ops.append(_w(d, k, v, f"{f}.{k}"))
    if "devices" in res and (res["devices"] is not None or not update):
        from . import devices
        rules = devices.rules_for(res, f"{field}.devices", linux_devices, update)
        d = need("devices", f"{field}.devices")
        for r in rules:
            ops.append(_w(d, "devices.allow" if r.allow else "devices.deny", r.v1(),
                          f"{field}.devices"))
    return ops


def _check_unified_key(k, v, f):
    if not isinstance(v, str):
        raise ConfigError(f"{f}.{k}", "must be a string")
    if "/" in k or k.startswith(".") or not k:
        raise ConfigError(f"{f}.{k}", "must name a file of the container's cgroup")
    if k.startswith("cgroup.") and k not in ("cgroup.max.depth", "cgroup.max.descendants",
                                              "cgroup.freeze", "cgroup.type"):
        raise ConfigError(f"{f}.{k}", "is cgroup core state, not a resource: refusing")


def _plan_memory(need, mem, f, update):
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
    if check and lim not in (None, -1):
        use = fs.read_int(os.path.join(d, "memory.usage_in_bytes"), 0)
        if lim < use:
            raise ConfigError(f"{f}.limit", f"{lim} is below the current usage {use} "
                              "(checkBeforeUpdate)")
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


def _plan_cpu(need, cpu, f):
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


def _plan_blkio(need, bio, f):
    ops = []
    w = base.get_int(bio, "weight", f"{f}.weight", 0, 1000)
    lw = base.get_int(bio, "leafWeight", f"{f}.leafWeight", 0, 1000)
    if w:
        if w < 10:
            raise ConfigError(f"{f}.weight", f"{w} is out of range: must be 10..1000")
        d = need("blkio", f"{f}.weight")
        ops.append((_blkio_write, d, ("blkio.weight", "blkio.bfq.weight"), w, f"{f}.weight"))
    if lw:
        d = need("blkio", f"{f}.leafWeight")
        ops.append((_blkio_write, d, ("blkio.leaf_weight",), lw, f"{f}.leafWeight"))
    for where, mj, mn, wt in base.device_list(bio, "weightDevice", f, "weight", 0, 1000):
        lwt = base.get_int(bio["weightDevice"][int(where.rsplit("[", 1)[1][:-1])],
                           "leafWeight", f"{where}.leafWeight", 0, 1000)
        d = need("blkio", where)
        if wt is not None:
            ops.append((_blkio_write, d, ("blkio.weight_device", "blkio.bfq.weight_device"),
                        f"{mj}:{mn} {wt}", f"{where}.weight"))
        if lwt is not None:
            ops.append((_blkio_write, d, ("blkio.leaf_weight_device",), f"{mj}:{mn} {lwt}",
                        f"{where}.leafWeight"))
    for key, name in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                      ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                      ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                      ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
        for where, mj, mn, rate in base.device_list(bio, key, f, "rate", 0):
            if rate is None:
                raise ConfigError(f"{where}.rate", "is required")
            ops.append(_w(need("blkio", where), name, f"{mj}:{mn} {rate}", f"{where}.rate"))
    return ops


def _blkio_write(d, names, value, field):
    """The first of `names` the kernel has (CFQ's blkio.weight, else BFQ's)."""
    for n in names:
        if os.path.exists(os.path.join(d, n)):
            return fs.write(d, n, value, field)
    raise ConfigError(field, f"the kernel has none of {', '.join(names)} in {d} "
                      "(no I/O scheduler with cgroup weights for this field)")


def _plan_rdma(need, rdma, f, fname):
    ops = []
    if not isinstance(rdma, dict):
        raise ConfigError(f, "must be an object of device: limits")
    for dev, lim in rdma.items():
        where = f"{f}.{dev}"
        if not isinstance(lim, dict):
            raise ConfigError(where, "must be an object")
        h = base.get_int(lim, "hcaHandles", f"{where}.hcaHandles", 0, 0xFFFFFFFF)
        o = base.get_int(lim, "hcaObjects", f"{where}.hcaObjects", 0, 0xFFFFFFFF)
        if h is None and o is None:
            continue
        parts = [dev]
        if h is not None:
            parts.append(f"hca_handle={h}")
        if o is not None:
            parts.append(f"hca_object={o}")
        ops.append(_w(need("rdma", where), fname, " ".join(parts), where))
    return ops


# --- helpers --------------------------------------------------------------------------

def _mkdirs(d, tries=5):
    """mkdir -p; return the dirs made, parents first. A parent that another
    container's delete removes meanwhile (ENOENT) is made again."""
    for _ in range(tries - 1):
        try:
            return _mkdirs_once(d)
        except FileNotFoundError:
            continue
    return _mkdirs_once(d)


def _mkdirs_once(d):
    made = []
    todo = []
    cur = d
    while not os.path.isdir(cur):
        todo.append(cur)
        cur = os.path.dirname(cur)
    for p in reversed(todo):
        try:
            os.mkdir(p, 0o755)
            made.append(p)
        except FileExistsError:
            pass
        except OSError as e:
            for m in reversed(made):
                fs.rmdir_retry(m)
            if isinstance(e, FileNotFoundError):
                raise
            raise OcirtError(f"linux.cgroupsPath: cannot create cgroup {p}: {e.strerror}") \
                from None
    return made


def _cpuset_inherit(d):
    parent = os.path.dirname(d)
    for name in ("cpuset.cpus", "cpuset.mems"):
        try:
            if fs.read(os.path.join(d, name)).strip():
                continue
            val = fs.read(os.path.join(parent, name)).strip()
            fs.write(d, name, val, "linux.cgroupsPath")
        except OSError as e:
            raise OcirtError(f"cgroup {d}: cannot copy {name} from its parent: "
                             f"{e.strerror}") from None


def _dirs(d):
    return [h[2] for h in d.get("hier") or []]


def _freezer(d):
    return (d.get("dirs") or {}).get("freezer")


def is_frozen(d):
    fz = _freezer(d)
    if not fz:
        return False
    return fs.read(os.path.join(fz, "freezer.state")).strip() == "FROZEN"


def freeze(d):
    import time
    fz = _freezer(d)
    if not fz:
        raise OcirtError("cannot pause: the freezer controller is not mounted")
    fs.write(fz, "freezer.state", "FROZEN", "freezer.state")
    # FREEZING can last while tasks finish a syscall; wait, nudging the kernel.
    for i in range(1000):
        st = fs.read(os.path.join(fz, "freezer.state")).strip()
        if st == "FROZEN":
            return
        if i % 50 == 49:
            fs.write(fz, "freezer.state", "FROZEN", "freezer.state")
        time.sleep(0.001 if i < 100 else 0.01)
    fs.write(fz, "freezer.state", "THAWED", "freezer.state")
    raise OcirtError(f"cannot pause: {fz} did not freeze (processes stuck in the kernel?)")


def thaw(d):
    fz = _freezer(d)
    if not fz:
        raise OcirtError("cannot resume: the freezer controller is not mounted")
    fs.write(fz, "freezer.state", "THAWED", "freezer.state")


def pids(d):
    out = set()
    for x in _dirs(d):
        out.update(fs.procs(x))
    return sorted(out)


def kill_all(d):
    fz = _freezer(d)
    if fz:
        try:
            freeze(d)  # no fork can escape the kill
        except (OcirtError, OSError):
            pass
    fs.signal_pids(pids(d), signal.SIGKILL)
    if fz:
        try:
            thaw(d)
        except (OcirtError, OSError):
            pass
    if not fs.kill_loop(_dirs(d)):
        raise OcirtError(f"processes in cgroup {d.get('path')} survived SIGKILL")


def remove(d):
    fs.remove_dirs(d.get("created"), {h[2] for h in d.get("hier") or []}, _freezer(d),
                   lambda: kill_all(d))


def update(d, res, field):
    ops = plan(d.get("dirs") or {}, res, field, d.get("linux_devices"), update=True)
    for op in ops:
        op[0](*op[1:])


def oom_kills(d):
    m = (d.get("dirs") or {}).get("memory")
    if not m:
        return 0
    return fs.read_kv(os.path.join(m, "memory.oom_control")).get("oom_kill", 0)


def stats(d):
    from .counters import v1_stats
    return v1_stats(d)


def usage(d):
    from .counters import v1_usage
    return v1_usage(d)


# --- the cgroup mount in the container -------------------------------------------------

def mount_v1(cg, target, opts, where):
    """tmpfs at target, one mount per hierarchy under it (cgroupfs with a cgroup
    namespace, else a bind mount of the container's own dir), symlinks for co-mounted
    controllers, and everything read-only when the config says ro."""
    from ..rootfs.mounts import remount_bind
    flags = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
    ro = flags & sc.MS_RDONLY
    base_flags = flags & ~sc.MS_RDONLY
    try:
        parent = os.open(target + "/..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise ConfigError(where, f"cgroup mount: {e.strerror}") from None
    name = os.path.basename(os.readlink(target))
    tfd = None
    try:
        sc.mount("tmpfs", target, "tmpfs", base_flags | sc.MS_NOSUID | sc.MS_NODEV
                 | sc.MS_NOEXEC, "mode=755")
        tfd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                      dir_fd=parent)
        for key, base_name, hostdir in cg.hier:
            if key == "":
                continue  # the hybrid cgroup2 hierarchy stays out of the container (as runc)
            os.mkdir(base_name, 0o755, dir_fd=tfd)
            sfd = os.open(base_name, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=tfd)
            try:
                sub = f"/proc/self/fd/{sfd}"
                if cg.cgroupns:
                    data = key if not key.startswith("name=") else f"none,{key}"
                    sc.mount("cgroup", sub, "cgroup", flags, data)
                else:
                    sc.mount(hostdir, sub, None, sc.MS_BIND, None)
                    os.close(sfd)
                    sfd = os.open(base_name, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
                                  dir_fd=tfd)
                    remount_bind(f"/proc/self/fd/{sfd}",
                                 flags | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
            finally:
                os.close(sfd)
            ctrls = key.split(",")
            if len(ctrls) > 1:
                for c in ctrls:
                    if c != base_name and not c.startswith("name="):
                        try:
                            os.symlink(base_name, c, dir_fd=tfd)
                        except FileExistsError:
                            pass
        if ro:
            remount_bind(f"/proc/self/fd/{tfd}", flags | sc.MS_NOSUID | sc.MS_NODEV
                         | sc.MS_NOEXEC)
    except OSError as e:
        raise ConfigError(where, f"mounting the cgroup hierarchies: {e.strerror}") from None
    finally:
        if tfd is not None:
            os.close(tfd)
        os.close(parent)
