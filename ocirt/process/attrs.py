"""Process attributes shared by init and `ocirt exec`: AppArmor profile, SELinux
label, I/O priority, scheduler (runtime-spec 1.2) and execCPUAffinity.

`check(proc)` runs in the parent before the fork: every field is validated and a
config asking for an LSM the host lacks is refused there, naming the field.
The apply_* functions run in the container process:
  apply_sched(proc)  early, as root, before capabilities are dropped (real-time
                     classes and policies need CAP_SYS_ADMIN / CAP_SYS_NICE);
  apply_lsm(proc)    last before seccomp and execve: the profile and label are
                     set "on exec" (/proc/self/attr/.../exec), as runc does.
"""
import os

from .. import syscalls as sc
from ..errors import ConfigError
from ..log import LOG

IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_WHO_PROCESS = 1
POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
            "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}


PERSONALITY = {"LINUX": 0x0000, "LINUX32": 0x0008}


def apply_personality(pers, field="linux.personality"):
    """linux.personality: the container's init, and every process exec'd into it."""
    if pers is None:
        return
    dom = pers.get("domain", "LINUX")
    if dom not in PERSONALITY:
        raise ConfigError(f"{field}.domain", f"unknown domain {dom!r}")
    sc.personality(PERSONALITY[dom])


# --- host support ------------------------------------------------------------------

def apparmor_enabled():
    return sc.read_control("/sys/module/apparmor/parameters/enabled") == "Y"


def selinux_enabled():
    return os.path.exists("/sys/fs/selinux/enforce")


# --- validation (parent) -----------------------------------------------------------

def check(proc, where="process"):
    if proc.get("apparmorProfile") and not apparmor_enabled():
        raise ConfigError(f"{where}.apparmorProfile", "AppArmor is not enabled on this host")
    if proc.get("selinuxLabel") and not selinux_enabled():
        raise ConfigError(f"{where}.selinuxLabel", "SELinux is not enabled on this host")
    io = proc.get("ioPriority")
    if io is not None:
        _ioprio(io, f"{where}.ioPriority")
    s = proc.get("scheduler")
    if s is not None:
        _sched(s, f"{where}.scheduler")
    aff = proc.get("execCPUAffinity")
    if aff is not None:
        for key in ("initial", "final"):
            if aff.get(key):
                parse_cpus(aff[key], f"{where}.execCPUAffinity.{key}")


def _ioprio(io, where):
    cls = io.get("class")
    if cls not in IOPRIO_CLASSES:
        raise ConfigError(f"{where}.class", f"unknown class {cls!r}")
    prio = io.get("priority", 0)
    if not isinstance(prio, int) or isinstance(prio, bool) or not 0 <= prio <= 7:
        raise ConfigError(f"{where}.priority", f"must be from 0 to 7, not {prio!r}")
    return (IOPRIO_CLASSES[cls] << 13) | prio


def _sched(s, where):
    pol = s.get("policy")
    if pol not in POLICIES:
        raise ConfigError(f"{where}.policy", f"unknown policy {pol!r}")
    nice = s.get("nice", 0)
    if not isinstance(nice, int) or not -20 <= nice <= 19:
        raise ConfigError(f"{where}.nice", f"must be from -20 to 19, not {nice!r}")
    prio = s.get("priority", 0)
    if prio and pol not in ("SCHED_FIFO", "SCHED_RR"):
        raise ConfigError(f"{where}.priority", "only SCHED_FIFO and SCHED_RR take a priority")
    if pol in ("SCHED_FIFO", "SCHED_RR") and not 1 <= prio <= 99:
        raise ConfigError(f"{where}.priority", f"must be from 1 to 99 for {pol}, not {prio}")
    for key in ("runtime", "deadline", "period"):
        if s.get(key) and pol != "SCHED_DEADLINE":
            raise ConfigError(f"{where}.{key}", "only SCHED_DEADLINE takes it")
    flags = 0
    for i, f in enumerate(s.get("flags") or []):
        if f not in SCHED_FLAGS:
            raise ConfigError(f"{where}.flags[{i}]", f"unknown flag {f!r}")
        flags |= SCHED_FLAGS[f]
    return (POLICIES[pol], flags, nice, prio, s.get("runtime", 0), s.get("deadline", 0),
            s.get("period", 0))


def parse_cpus(text, where):
    """'0-3,7' -> {0, 1, 2, 3, 7}."""
    cpus = set()
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                raise ValueError
            lo, dash, hi = part.partition("-")
            lo = int(lo)
            hi = int(hi) if dash else lo
            if lo < 0 or hi < lo or hi > 8191:
                raise ValueError
            cpus.update(range(lo, hi + 1))
    except ValueError:
        raise ConfigError(where, f"invalid CPU list {text!r} (e.g. \"0-3,7\")") from None
    return cpus


# --- application (container side) -----------------------------------------------------

def apply_sched(proc, where="process"):
    io = proc.get("ioPriority")
    if io is not None:
        try:
            sc.ioprio_set(IOPRIO_WHO_PROCESS, 0, _ioprio(io, f"{where}.ioPriority"))
        except OSError as e:
            raise ConfigError(f"{where}.ioPriority", f"cannot set it: {e.strerror}") from None
    s = proc.get("scheduler")
    if s is not None:
        args = _sched(s, f"{where}.scheduler")
        try:
            sc.sched_setattr(0, *args)
        except OSError as e:
            hint = ""
            if e.errno == 1 and s["policy"] == "SCHED_DEADLINE" and \
                    len(os.sched_getaffinity(0)) < (os.cpu_count() or 1):
                # sched_setattr(2): EPERM when the affinity lacks a CPU of the system
                hint = (" (process scheduler can't be used together with AllowedCPUs: "
                        "SCHED_DEADLINE needs every CPU, and linux.resources.cpu.cpus "
                        "leaves some out)")
            elif e.errno == 1 and s["policy"] in ("SCHED_FIFO", "SCHED_RR", "SCHED_DEADLINE"):
                hint = (" (real-time policies need CAP_SYS_NICE and, under a cgroup v1 cpu "
                        "controller, linux.resources.cpu.realtimeRuntime)")
            raise ConfigError(f"{where}.scheduler", f"cannot set policy {s['policy']}: "
                              f"{e.strerror}{hint}") from None


def reset_affinity(pid):
    """Every CPU the container's cgroup allows, not the CPUs of whoever ran ocirt (a
    `taskset` of the caller must not leak in; the kernel keeps the cpuset's)."""
    try:
        os.sched_setaffinity(pid, range(os.cpu_count() or 1))
    except OSError:
        pass  # a cpuset that moved meanwhile: the kernel's choice stands


def set_affinity(pid, proc, key, where="process"):
    text = (proc.get("execCPUAffinity") or {}).get(key)
    if not text:
        return
    field = f"{where}.execCPUAffinity.{key}"
    cpus = parse_cpus(text, field)
    try:
        os.sched_setaffinity(pid, cpus)
    except OSError as e:
        raise ConfigError(field, f"cannot run on CPUs {text}: {e.strerror}") from None
    if LOG.debug_on:  # runc's line, which its suite checks the mask by
        LOG.debug(f"nsexec: {key} affinity of {pid}: affinity: {sum(1 << c for c in cpus):#x}")


def _write_attr(paths, value, field):
    last = None
    for p in paths:
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError as e:
            last = e
            continue
        except OSError as e:
            raise ConfigError(field, f"cannot open {p}: {e.strerror}") from None
        try:
            os.write(fd, value.encode())
            return
        except OSError as e:
            raise ConfigError(field, f"cannot apply {value!r}: {e.strerror}") from None
        finally:
            os.close(fd)
    raise ConfigError(field, f"cannot apply it: {last.strerror if last else 'no /proc'}"
                      " (is /proc mounted in the container?)")


def apply_lsm(proc, where="process"):
    prof = proc.get("apparmorProfile")
    if prof:
        _write_attr(("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"),
                    f"exec {prof}", f"{where}.apparmorProfile")
    label = proc.get("selinuxLabel")
    if label:
        _write_attr(("/proc/self/attr/exec",), label, f"{where}.selinuxLabel")
