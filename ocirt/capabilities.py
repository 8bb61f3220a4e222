"""process.capabilities: the five sets, through capget/capset and prctl(2) in the shim
(python-prctl's module and libcap cost ~1 ms to load on every create and exec)."""
from . import syscalls as sc
from .lazy import log

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {n: i for i, n in enumerate(NAMES)}
SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


_LAST = []


def last_cap():
    """The kernel's highest capability number (fixed while it runs: read once, in the
    create process, and inherited by init)."""
    if not _LAST:
        try:
            with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
                _LAST.append(int(f.read()))
        except (OSError, ValueError):
            return len(NAMES) - 1
    return _LAST[0]


def parse(caps, where="process.capabilities", warn=False):
    """{set: [numbers]}. A capability that cannot be granted is left out with a
    warning, not an error (runtime-spec >= 1.1): a name nobody knows, one this
    kernel lacks, and an ambient one that is not both permitted and inheritable
    (the kernel refuses to raise it). `warn`: say so (the parent, before the fork;
    the container side computes the same sets quietly)."""
    top = last_cap()
    out = {}
    dropped = []
    # No object, or engines written in Go omitting empty lists: a missing set is
    # empty (the bounding set included, or a root process regains everything at exec).
    caps = caps or {}
    for s in SETS:
        nums = []
        for i, name in enumerate(caps.get(s) or []):
            n = NUMBERS.get(name.upper()) if isinstance(name, str) else None
            if n is None:
                dropped.append(f"{where}.{s}[{i}]: unknown capability {name!r}")
            elif n > top:
                dropped.append(f"{where}.{s}[{i}]: {name} is unknown to this kernel")
            else:
                nums.append(n)
        out[s] = nums
    grantable = set(out["permitted"]) & set(out["inheritable"])
    amb = []
    for n in out["ambient"]:
        if n in grantable:
            amb.append(n)
        else:
            dropped.append(f"{where}.ambient: can't raise ambient capability {NAMES[n]}: "
                           "it must be permitted and inheritable too")
    out["ambient"] = amb
    if warn and dropped:
        log.LOG.warning("ignoring capabilities that cannot be granted: " + "; ".join(dropped))
    return out


def _mask(nums):
    m = 0
    for n in nums:
        m |= 1 << n
    return m


def drop_bounding(parsed):
    """Shrink the bounding set; needs CAP_SETPCAP, so it runs before the uid change."""
    if "bounding" not in parsed:
        return
    sc.capbset_drop(_mask(parsed["bounding"]), last_cap())  # one PR_CAPBSET_DROP per cap


def raise_effective():
    """Make every permitted capability effective again: a uid change clears the
    effective set, and loading a seccomp filter without no_new_privs needs
    CAP_SYS_ADMIN in it (the config's sets are applied right after)."""
    _e, p, i = sc.capget()
    sc.capset(p, p, i)


def apply(parsed):
    """Set effective, permitted and inheritable, then raise the ambient ones."""
    full = (1 << (last_cap() + 1)) - 1
    sc.capset(_mask(parsed.get("effective", ())) & full,
              _mask(parsed.get("permitted", ())) & full,
              _mask(parsed.get("inheritable", ())) & full)
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    for c in parsed.get("ambient", ()):
        sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, c)
