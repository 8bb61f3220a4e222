"""The cgroup v2 (unified) driver.

Conversions from the OCI (v1-shaped) fields, as runc does them:
  cpu.shares S       -> cpu.weight 1 + (S - 2) * 9999 / 262142
  cpu.quota/period   -> cpu.max "QUOTA PERIOD" (quota -1 -> max)
  memory.swap W      -> memory.swap.max W - limit (OCI swap is memory + swap)
  memory.reservation -> memory.low
  blockIO.weight W   -> io.bfq.weight W when the kernel has it, else
                        io.weight 1 + (W - 10) * 9999 / 990
  throttle*Device    -> io.max "MAJ:MIN rbps=|wbps=|riops=|wiops=N"
  hugepageLimits     -> hugetlb.<size>.max
  devices            -> an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program
Fields v2 has no equivalent for (memory.kernel, kernelTCP, swappiness,
disableOOMKiller=true, useHierarchy=false, cpu.realtime*, blockIO.leafWeight,
network.*) are refused, never ignored.
"""
import os
import _signal as signal
import time

from .. import syscalls as sc
from ..errors import ConfigError, OcirtError
from . import base, fs
from .base import RES, w as _w
from ..lazy import bpf, counters, mounts

# Which controller each top-level section needs.
_CTRL = {"memory": "memory", "pids": "pids", "blockIO": "io", "hugepageLimits": "hugetlb",
         "rdma": "rdma"}


def mount_of(mounts=None):
    for t, mp, root, _ in (fs.cgroup_mounts() if mounts is None else mounts):
        if t == "cgroup2":
            return mp, root
    raise OcirtError("cgroup v2: no cgroup2 filesystem is mounted")


class V2Cgroup(base.Manager):
    driver = "v2"

    def __init__(self, path):
        super().__init__(path)
        self.dir = None
        self.mount = None

    def _restore(self, d):
        self.dir = d["dir"]
        self.mount = d.get("mount")

    def _own_state(self):
        return {"dir": self.dir, "mount": self.mount}

    def leaves(self):
        return [self.dir]

    @classmethod
    def plan(cls, cfg, cid, path, mounts=None):
        linux = cfg.get("linux") or {}
        res = base.check_sections(linux.get("resources"), RES)
        mp, mroot = mount_of(mounts)
        if path:
            if path.startswith("/"):
                cgpath = fs.clean_path(path)
            else:
                cgpath = fs.clean_path(fs.own_cgroups().get("", "/") + "/" + path)
        else:
            cgpath = f"/ocirt/{cid}"
        self = cls(cgpath)
        self.mount = mp
        self.dir = fs.under_mount(mp, mroot, cgpath)
        fs.check_makeable(self.dir)
        self._init_from_config(linux)
        self._ops, self._required = plan(self.dir, res, RES, linux.get("devices"),
                                         update=False, check_files=False)
        self.made = False
        return self

    def _make_dirs(self):
        """mkdir the path, enabling controllers on the way down, obeying the
        no-internal-process rule."""
        required = self._required
        rel = os.path.relpath(self.dir, self.mount)
        chain = [self.mount]
        if rel != ".":
            for part in rel.split("/"):
                chain.append(os.path.join(chain[-1], part))
        for i, d in enumerate(chain):
            if i > 0 and not os.path.isdir(d):
                try:
                    os.mkdir(d, 0o755)
                except FileExistsError:
                    pass
                except OSError as e:
                    raise ConfigError("linux.cgroupsPath", f"cannot create cgroup {d}: "
                                      f"{e.strerror}", errno=e.errno) from None
                else:
                    self.created.append(d)
            if d == self.dir:
                break
            _enable(d, required, is_root=(i == 0))
        have = set(fs.read(os.path.join(self.dir, "cgroup.controllers")).split())
        for ctrl, field in required.items():
            if ctrl not in have:
                raise ConfigError(field, f"cgroup v2 controller {ctrl} is not available in "
                                  f"{self.dir} (the kernel lacks it, or a parent does not "
                                  "delegate it)")
        if _events(self.dir).get("frozen") == "1" or self._frozen():
            # a process moved in would stop before it could be set up, unkillable
            # by anything but a thaw
            raise base.frozen_error(self.dir, "cgroup.freeze")
        if not self.created or self.created[-1] != self.dir:
            if fs.procs(self.dir, recursive=False):
                raise base.not_empty_error(self.dir)

    def sub_dirs(self, sub):
        if set(sub) - {""}:
            raise OcirtError("--cgroup: cgroup v2 takes one path, without a controller")
        return [os.path.join(self.dir, sub[""])]

    # --- a live cgroup -----------------------------------------------------------
    def set(self, resources, field=RES):
        ops, req = plan(self.dir, resources, field, self.linux_devices, update=True)
        have = set(fs.read(os.path.join(self.dir, "cgroup.controllers")).split())
        for ctrl, f in req.items():
            if ctrl not in have:
                raise ConfigError(f, f"cgroup v2 controller {ctrl} is not enabled for "
                                  f"{self.dir}")
        base.run(ops)

    def _probe(self):
        return self.dir

    def _frozen(self):
        return fs.read(os.path.join(self.dir, "cgroup.freeze")).strip() == "1"

    def freeze(self):
        d = self.dir
        fs.write(d, "cgroup.freeze", "1", "cgroup.freeze")
        for _ in range(2000):
            if _events(d).get("frozen") == "1":
                return
            time.sleep(0.005)
        fs.write(d, "cgroup.freeze", "0", "cgroup.freeze")
        raise OcirtError(f"cannot pause: {d} did not freeze")

    def thaw(self):
        fs.write(self.dir, "cgroup.freeze", "0", "cgroup.freeze")

    def kill_all(self):
        d = self.dir
        if not os.path.isdir(d):
            return
        if os.path.exists(os.path.join(d, "cgroup.kill")):
            try:
                fs.write(d, "cgroup.kill", "1", "cgroup.kill")  # kills frozen tasks too
            except ConfigError:
                pass
        else:
            fs.signal_pids(self.pids(), signal.SIGKILL)
            try:
                self.thaw()
            except (ConfigError, OSError):
                pass
        if not fs.kill_loop([d]):
            raise OcirtError(f"processes in cgroup {d} survived SIGKILL")

    def oom_kills(self):
        return fs.read_kv(os.path.join(self.dir, "memory.events")).get("oom_kill", 0)

    def stats(self):
        return counters.v2_stats(self.dir)

    def usage(self):
        return counters.v2_usage(self.dir)

    def mount_in_container(self, target, opts, where):
        flags = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
        try:
            if self.cgroupns:
                sc.mount("cgroup2", target, "cgroup2", flags, None)
            else:
                mounts.bind_onto(self.dir, target, flags)
        except OSError as e:
            raise ConfigError(where, f"mounting cgroup2: {e.strerror}") from None


def _enable(d, required, is_root):
    """Enable in d's cgroup.subtree_control every controller it has (what the
    container's stats need), unless d holds processes: then only check that the
    controllers the limits need are already on, and say why not otherwise."""
    avail = set(fs.read(os.path.join(d, "cgroup.controllers")).split())
    on = set(fs.read(os.path.join(d, "cgroup.subtree_control")).split())
    missing = avail - on
    if not missing:
        return
    if not is_root and fs.procs(d, recursive=False):
        need = [c for c in required if c in missing]
        if need:
            raise ConfigError(required[need[0]], f"cgroup {d} holds processes, so controller"
                              f" {need[0]} cannot be enabled in its cgroup.subtree_control "
                              "(cgroup v2 no-internal-process rule); use a linux.cgroupsPath "
                              "outside it, or move those processes into a leaf cgroup")
        return
    try:
        fs.write(d, "cgroup.subtree_control", " ".join("+" + c for c in sorted(missing)),
                 "linux.cgroupsPath")
    except ConfigError:
        # One controller may refuse (e.g. a threaded subtree); enable one by one.
        for c in sorted(missing):
            try:
                fs.write(d, "cgroup.subtree_control", "+" + c, "linux.cgroupsPath")
            except ConfigError as e:
                if c in required:
                    raise ConfigError(required[c], f"cannot enable controller {c} in "
                                      f"{d}/cgroup.subtree_control: {e.message}") from None


# --- planning ---------------------------------------------------------------------

_IO_MAX_KEYS = ("rbps", "wbps", "riops", "wiops")  # base.THROTTLES in io.max


def shares_to_weight(shares):
    if not shares:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(w):
    if not w:
        return 0
    return 1 + ((w - 10) * 9999) // 990


def plan(d, res, field, linux_devices=None, update=False, check_files=True):
    """-> (ops, {controller: field that needs it})."""
    res = base.check_sections(res, field)
    ops = []
    req = {}

    def need(ctrl, f):
        req.setdefault(ctrl, f)
        return d

    def refuse(f, why):
        raise ConfigError(f, f"cgroup v2 has no equivalent: {why}; refusing rather than "
                          "ignoring it")

    mem = res.get("memory") or {}
    if mem:
        f = f"{field}.memory"
        lim, swap, resv, kern, ktcp, swp, oom, hier, check = base.memory_fields(mem, f)
        if kern:
            refuse(f"{f}.kernel", "kernel memory is accounted in memory.max")
        if ktcp:
            refuse(f"{f}.kernelTCP", "TCP buffer memory is accounted in memory.max")
        if swp is not None:
            refuse(f"{f}.swappiness", "there is no per-cgroup swappiness")
        if oom:
            refuse(f"{f}.disableOOMKiller", "the OOM killer cannot be disabled per cgroup")
        if hier is False:
            refuse(f"{f}.useHierarchy", "v2 is always hierarchical")
        if lim == 0:
            lim = None
        if swap == 0:
            swap = None
        swapmax = None
        if swap is not None:
            if swap == -1:
                swapmax = "max"
            elif lim is None and not update:
                raise ConfigError(f"{f}.swap", "a swap limit needs memory.limit too (v2 "
                                  "limits swap separately: swap.max = swap - limit)")
            elif lim == -1:
                raise ConfigError(f"{f}.swap", "a swap limit with an unlimited memory.limit"
                                  " cannot be converted to memory.swap.max")
            elif lim is not None and swap < lim:
                raise ConfigError(f"{f}.swap", f"{swap} is below memory.limit {lim}: swap is"
                                  " the total of memory and swap")
            else:
                swapmax = ("delta", swap)
        if any(x is not None for x in (lim, swapmax, resv)):
            need("memory", f)
        if lim is not None or swapmax is not None:
            ops.append((_set_mem, d, lim, swapmax, f, bool(check and update)))
        if resv:
            ops.append(_w(d, "memory.low", "max" if resv == -1 else resv, f"{f}.reservation"))
    cpu = res.get("cpu") or {}
    if cpu:
        f = f"{field}.cpu"
        shares, quota, period, burst, rtr, rtp, idle, cpus, mems = base.cpu_fields(
            cpu, f, (2, 262144), 0)
        if rtr:
            refuse(f"{f}.realtimeRuntime", "realtime CPU time is not a v2 cgroup limit")
        if rtp:
            refuse(f"{f}.realtimePeriod", "realtime CPU time is not a v2 cgroup limit")
        if shares:
            need("cpu", f"{f}.shares")
            ops.append(_w(d, "cpu.weight", shares_to_weight(shares), f"{f}.shares"))
        if quota or period:
            need("cpu", f"{f}.quota" if quota else f"{f}.period")
            ops.append((_set_cpu_max, d, quota, period, f))
        if burst is not None:
            need("cpu", f"{f}.burst")
            ops.append(_w(d, "cpu.max.burst", burst, f"{f}.burst"))
        if idle is not None:
            need("cpu", f"{f}.idle")
            ops.append(_w(d, "cpu.idle", idle, f"{f}.idle"))
        if cpus:
            need("cpuset", f"{f}.cpus")
            ops.append(_w(d, "cpuset.cpus", cpus, f"{f}.cpus"))
        if mems:
            need("cpuset", f"{f}.mems")
            ops.append(_w(d, "cpuset.mems", mems, f"{f}.mems"))
    ops += base.plan_pids(need, res, field)
    bio = res.get("blockIO") or {}
    if bio:
        f = f"{field}.blockIO"
        w, lw, wdev, thr = base.blkio_fields(bio, f)
        if lw:
            refuse(f"{f}.leafWeight", "there is no leaf weight")
        if w:
            need("io", f"{f}.weight")
            ops.append((_set_io_weight, d, None, w, f"{f}.weight"))
        for where, mj, mn, wt, lwt in wdev:
            if lwt:
                refuse(f"{where}.leafWeight", "there is no leaf weight")
            if wt is not None:
                need("io", where)
                ops.append((_set_io_weight, d, f"{mj}:{mn}", wt, f"{where}.weight"))
        for i, where, mj, mn, rate in thr:
            need("io", where)
            ops.append(_w(d, "io.max", f"{mj}:{mn} {_IO_MAX_KEYS[i]}={rate if rate else 'max'}",
                          f"{where}.rate"))
    ops += base.plan_hugetlb(need, res, field, "hugetlb.{}.max", "hugetlb.{}.rsvd.max")
    net = base.network(res, field)
    if net:
        if net.get("classID") is not None:
            refuse(f"{field}.network.classID", "net_cls is a v1-only controller")
        if net.get("priorities"):
            refuse(f"{field}.network.priorities", "net_prio is a v1-only controller")
    ops += base.plan_rdma(need, res, field)
    f = f"{field}.unified"
    for k, v in base.unified(res, field).items():
        base.check_unified_key(k, v, f)
        ctrl = k.split(".", 1)[0]
        if ctrl not in ("cgroup",):
            need(ctrl, f"{f}.{k}")
        ops.append(_w(d, k, v, f"{f}.{k}"))
    rules = base.device_rules(res, field, linux_devices, update)
    if rules is not None:
        ops.append((_set_devices, d, rules, f"{field}.devices"))
    return ops, req


def _set_mem(d, lim, swapmax, f, check):
    if check:
        base.check_before_update(d, "memory.current", lim, f)
    if isinstance(swapmax, tuple):
        total = swapmax[1]
        cur = lim
        if cur is None:
            cur = fs.read_int(os.path.join(d, "memory.max"))
            if cur is None:
                raise ConfigError(f"{f}.swap", "a swap limit needs a memory limit")
        swapmax = total - cur
    if swapmax is not None and not os.path.exists(os.path.join(d, "memory.swap.max")):
        raise ConfigError(f"{f}.swap", "the kernel has no memory.swap.max (no swap "
                          "accounting)")
    if lim is not None:
        fs.write(d, "memory.max", "max" if lim == -1 else lim, f"{f}.limit")
    if swapmax is not None:
        fs.write(d, "memory.swap.max", swapmax, f"{f}.swap")


def _set_cpu_max(d, quota, period, f):
    if quota is None or period is None:
        try:
            cq, cp = fs.read(os.path.join(d, "cpu.max")).split()
        except OSError:
            cq, cp = "max", "100000"
        if quota is None:
            quota = cq
        if period is None:
            period = cp
    q = "max" if quota in (-1, "max") else quota
    fs.write(d, "cpu.max", f"{q} {period}", f"{f}.quota")


def _set_io_weight(d, dev, w, field):
    if os.path.exists(os.path.join(d, "io.bfq.weight")):
        fs.write(d, "io.bfq.weight", f"{dev} {w}" if dev else w, field)
    elif os.path.exists(os.path.join(d, "io.weight")):
        v = blkio_to_io_weight(w)
        fs.write(d, "io.weight", f"{dev} {v}" if dev else f"default {v}", field)
    else:
        raise ConfigError(field, f"the kernel has neither io.bfq.weight nor io.weight in {d}")


def _set_devices(d, rules, field):
    bpf.attach_device_filter(d, rules, field)


def _events(d):
    out = {}
    try:
        for line in fs.read(os.path.join(d, "cgroup.events")).splitlines():
            k, _, v = line.partition(" ")
            out[k] = v
    except OSError:
        pass
    return out
