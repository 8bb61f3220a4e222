"""The cgroup v1 driver: one directory per mounted hierarchy (plus the cgroup2
hierarchy in hybrid mode, like runc), resources written to each controller's files
(the memory, cpu and blockIO ones planned in v1limits.py)."""
import os
import _signal as signal
import time

from .. import syscalls as sc
from ..errors import ConfigError, OcirtError
from . import base, fs
from .base import RES, w as _w
from ..lazy import counters, mounts, v1limits


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


class V1Cgroup(base.Manager):
    driver = "v1"

    def __init__(self, path):
        super().__init__(path)
        self.dirs = {}      # controller name (or 'name=systemd', or '' unified) -> dir
        self.hier = []      # [(key, mountpoint basename, dir)]

    def _restore(self, d):
        self.dirs = d.get("dirs") or {}
        self.hier = d.get("hier") or []

    def _own_state(self):
        return {"dirs": self.dirs, "hier": self.hier}

    def leaves(self):
        return [h[2] for h in self.hier]

    # --- creation ------------------------------------------------------------
    @classmethod
    def plan(cls, cfg, cid, path, mounts=None):
        linux = cfg.get("linux") or {}
        res = base.check_sections(linux.get("resources"), RES)
        if path:
            rel = not path.startswith("/")
            cgpath = fs.clean_path(path)
        else:
            rel, cgpath = False, f"/ocirt/{cid}"
        own = fs.own_cgroups()
        self = cls(cgpath if not rel else path)
        self._init_from_config(linux)
        self._mounts = []
        for key, ctrls, mp, root in hierarchies(own, mounts):
            self._mounts.append((key, ctrls, root, mp))
            p = fs.clean_path(own[key] + "/" + path) if rel else cgpath
            d = fs.under_mount(mp, root, p)
            fs.check_makeable(d)
            self.hier.append((key, os.path.basename(mp), d))
            for c in ctrls or [key]:
                self.dirs[c] = d
        self._ops = plan(self.dirs, res, RES, linux_devices=linux.get("devices"))
        self.made = False
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

    def sub_dirs(self, sub):
        """exec --cgroup: per hierarchy, the sub path given for one of its controllers
        (or for all, ""), below the container's dir."""
        known = {c for key, _, _ in self.hier for c in key.split(",")}
        for c in sub:
            if c and c not in known:
                raise OcirtError(f"--cgroup: unknown controller {c!r}")
        out = []
        for key, _, path in self.hier:
            ctrls = key.split(",")
            rel = next((sub[c] for c in ctrls if c in sub), sub.get("", ""))
            out.append(os.path.join(path, rel) if rel else path)
        return out

    # --- a live cgroup -----------------------------------------------------------
    def set(self, resources, field=RES):
        base.run(plan(self.dirs, resources, field, self.linux_devices, update=True))

    def _probe(self):
        return self.dirs.get("freezer")

    def _frozen(self):
        fz = self.dirs.get("freezer")
        return bool(fz) and fs.read(os.path.join(fz, "freezer.state")).strip() == "FROZEN"

    def freeze(self):
        fz = self.dirs.get("freezer")
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
        raise OcirtError(f"cannot pause: {fz} did not freeze (processes stuck in the "
                         "kernel?)")

    def thaw(self):
        fz = self.dirs.get("freezer")
        if not fz:
            raise OcirtError("cannot resume: the freezer controller is not mounted")
        fs.write(fz, "freezer.state", "THAWED", "freezer.state")

    def kill_all(self):
        fz = self.dirs.get("freezer")
        if fz:
            try:
                self.freeze()  # no fork can escape the kill
            except (OcirtError, OSError):
                pass
        fs.signal_pids(self.pids(), signal.SIGKILL)
        if fz:
            try:
                self.thaw()
            except (OcirtError, OSError):
                pass
        if not fs.kill_loop(self.leaves()):
            raise OcirtError(f"processes in cgroup {self.path} survived SIGKILL")

    def oom_kills(self):
        m = self.dirs.get("memory")
        if not m:
            return 0
        return fs.read_kv(os.path.join(m, "memory.oom_control")).get("oom_kill", 0)

    def stats(self):
        return counters.v1_stats(self.dirs)

    def usage(self):
        return counters.v1_usage(self.dirs)

    def mount_in_container(self, target, opts, where):
        mount_v1(self, target, opts, where)


# --- planning: validation, then writes ----------------------------------------------

def plan(dirs, res, field, linux_devices=None, update=False):
    """Validate everything first; return the ordered writes [(fn, args)]."""
    res = base.check_sections(res, field)
    ops = []

    def need(ctrl, f):
        d = dirs.get(ctrl)
        if d is None:
            raise ConfigError(f, f"cgroup v1 controller {ctrl} is not mounted on this host"
                              f" (no {ctrl} hierarchy in /proc/self/cgroup)")
        return d

    mem, cpu, bio = (res.get(k) or {} for k in ("memory", "cpu", "blockIO"))
    if mem or cpu or bio:
        if mem:
            ops += v1limits.plan_memory(need, mem, f"{field}.memory", update)
        if cpu:
            ops += v1limits.plan_cpu(need, cpu, f"{field}.cpu")
    ops += base.plan_pids(need, res, field)
    if bio:
        ops += v1limits.plan_blkio(need, bio, f"{field}.blockIO")
    ops += base.plan_hugetlb(need, res, field, "hugetlb.{}.limit_in_bytes",
                             "hugetlb.{}.rsvd.limit_in_bytes")
    net = base.network(res, field)
    if net:
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
    ops += base.plan_rdma(need, res, field)
    uni = base.unified(res, field)
    if uni and dirs.get("") is None:
        raise ConfigError(f"{field}.unified", "is for cgroup v2, and this host runs cgroup "
                          "v1 without a cgroup2 hierarchy")
    for k, v in uni.items():
        f = f"{field}.unified"
        base.check_unified_key(k, v, f)
        if not os.path.exists(os.path.join(dirs[""], k)):
            raise ConfigError(f"{f}.{k}", f"invalid configuration: {k} is not in the "
                              "cgroup v2 hierarchy of this hybrid host (its controllers "
                              "are cgroup v1's: use the v1 fields)")
        ops.append(_w(dirs[""], k, v, f"{f}.{k}"))
    rules = base.device_rules(res, field, linux_devices, update)
    if rules is not None:
        d = need("devices", f"{field}.devices")
        for r in rules:
            ops.append(_w(d, "devices.allow" if r.allow else "devices.deny", r.v1(),
                          f"{field}.devices"))
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
            raise ConfigError("linux.cgroupsPath", f"cannot create cgroup {p}: {e.strerror}",
                              errno=e.errno) from None
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
                             f"{e.strerror}", errno=e.errno) from None


# --- the cgroup mount in the container -------------------------------------------------

def mount_v1(cg, target, opts, where):
    """tmpfs at target, one mount per hierarchy under it (cgroupfs with a cgroup
    namespace, else a bind mount of the container's own dir), symlinks for co-mounted
    controllers, and everything read-only when the config says ro."""
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
                    mounts.remount_bind(f"/proc/self/fd/{sfd}",
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
            mounts.remount_bind(f"/proc/self/fd/{tfd}", flags | sc.MS_NOSUID | sc.MS_NODEV
                         | sc.MS_NOEXEC)
    except OSError as e:
        raise ConfigError(where, f"mounting the cgroup hierarchies: {e.strerror}") from None
    finally:
        if tfd is not None:
            os.close(tfd)
        os.close(parent)
