"""linux.seccomp: translated by libseccomp (through pyseccomp) into a BPF program in
the create process, before the fork; init only hands the finished program to
seccomp(2) (``Filter.load``), so nothing is loaded or resolved after pivot_root.

- Actions, operators and architectures are the libseccomp names the spec uses.
- A syscall name libseccomp does not know on this host is skipped with a warning in
  the log (as runc does, so one profile serves several kernels and libseccomp
  versions); any other malformed value is a ConfigError naming the field.
- A rule whose action equals the default action is redundant and skipped.
- Several conditions on the same argument cannot be ANDed in one libseccomp rule:
  each becomes its own rule (OR), as runc does.
- flags are checked against the running kernel before the fork; a flag it lacks is
  an error. SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV only means something with a
  listener and is dropped when no rule uses SCMP_ACT_NOTIFY.
- SCMP_ACT_NOTIFY: init loads the filter with SECCOMP_FILTER_FLAG_NEW_LISTENER and
  sends the notify fd to the create (or exec) process, which sends it on to
  listenerPath with the container process state and listenerMetadata.
"""
import os
import sys

from . import OCI_VERSION
from . import syscalls as sc
from .errors import ConfigError, OcirtError
from .lazy import config, json, jsonfast, log, stdsocket, struct

# Kernel SECCOMP_RET_* values; libseccomp's SCMP_ACT_* are the same numbers.
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_NOTIFY": 0x7FC00000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}
ARCHES = (
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
)
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
FLAG_NEW_LISTENER = 8
FLAG_TSYNC_ESRCH = 16
# The syscall init uses to hand the notify fd over: a notify rule on it would stop
# init before anyone can answer (runc refuses `write` for the same reason).
_NO_NOTIFY = ("sendmsg", "write")  # the set-up's own, after the filter is in (runc's list)
_MAX_ERRNO = 4095
_SONAMES = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}
NOTIFY_MSG = b'{"type": "seccomp-fd"}'
SECCOMP_FD_NAME = "seccompFd"

_lib = None


def _pyseccomp():
    """Import pyseccomp without ctypes.util.find_library (which runs ldconfig and a
    compiler, ~100 ms): the libraries are loaded by soname, as the dynamic loader
    finds them. Falls back to the real find_library if a soname does not load."""
    global _lib
    if _lib is not None:
        return _lib
    import ctypes
    import types
    try:
        for soname in _SONAMES.values():
            ctypes.CDLL(soname)
    except OSError:
        import pyseccomp
        _lib = pyseccomp
        return _lib
    had = "ctypes.util" in sys.modules
    saved = sys.modules.get("ctypes.util")
    stub = types.ModuleType("ctypes.util")
    stub.find_library = _SONAMES.get
    sys.modules["ctypes.util"] = stub
    ctypes.util = stub
    try:
        import pyseccomp
    finally:
        if had:
            sys.modules["ctypes.util"] = saved
            ctypes.util = saved
        else:
            del sys.modules["ctypes.util"]
            if getattr(ctypes, "util", None) is stub:
                del ctypes.util
    raw = pyseccomp._libseccomp
    raw.seccomp_arch_resolve_name.argtypes = (ctypes.c_char_p,)
    raw.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    raw.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
    raw.seccomp_syscall_resolve_name.restype = ctypes.c_int
    _lib = pyseccomp
    return _lib


class Filter:
    """A finished BPF program and how to load it; picklable-free plain data."""

    def __init__(self, prog, flags, listener_path=None, metadata=None):
        self.prog = prog            # bytes: struct sock_filter[]
        self.flags = flags          # SECCOMP_FILTER_FLAG_*
        self.notify = bool(flags & FLAG_NEW_LISTENER)
        self.listener_path = listener_path
        self.metadata = metadata

    def load(self, chan=None):
        """Install the filter in this process. With a listener, the notify fd goes to
        the process at the other end of `chan` (a Channel or socket) as a
        {"type": "seccomp-fd"} message with the fd attached."""
        sockfd = -1
        if self.notify:
            if chan is None:
                raise OcirtError("seccomp: a notify filter needs a channel to send its fd")
            sockfd = chan.fileno()
        try:
            sc.seccomp_load(self.flags, self.prog, sockfd, NOTIFY_MSG)
        except OSError as e:
            raise OcirtError(f"linux.seccomp: cannot load the filter: {e.strerror}") from None

    def send_to_listener(self, fd, state, pid):
        """Send the notify fd to listenerPath with the container process state, as
        the spec's ContainerProcessState (runc's format), then close our copy."""
        msg = {"ociVersion": state.get("ociVersion", OCI_VERSION), "fds": [SECCOMP_FD_NAME],
               "pid": pid, "state": state}
        if self.metadata:
            msg["metadata"] = self.metadata
        s = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM | stdsocket.SOCK_CLOEXEC)
        try:
            try:
                s.connect(self.listener_path)
                stdsocket.send_fds(s, [json.dumps(msg).encode()], [fd])
            except OSError as e:
                raise ConfigError("linux.seccomp.listenerPath",
                                  f"failed to connect with seccomp agent at "
                                  f"{self.listener_path}: {e.strerror or e}") from None
        finally:
            s.close()
            os.close(fd)


def _warn(msg):
    log.LOG.warning(msg)


def _uint(v, where, limit):
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limit:
        raise ConfigError(where, f"must be an integer from 0 to {limit}, not {v!r}")
    return v


def _action(name, errno_ret, where, errno_where):
    if not isinstance(name, str) or name not in ACTIONS:
        raise ConfigError(where, f"unknown action {name!r}")
    act = ACTIONS[name]
    if errno_ret is not None:
        if name not in _WITH_ERRNO:
            raise ConfigError(errno_where, f"{name} takes no errno "
                              "(only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)")
        return act | _uint(errno_ret, errno_where, _MAX_ERRNO)
    if name in _WITH_ERRNO:
        return act | 1  # EPERM, as runc
    return act


def _flags(spec, uses_notify):
    """The seccomp(2) flags. No `flags` at all (not an empty list): SPEC_ALLOW where the
    kernel has it, as runc does (a filter would otherwise force the speculative store
    bypass mitigation on, which a process without one does not get)."""
    if spec.get("flags") is None:
        try:
            sc.seccomp(SECCOMP_SET_MODE_FILTER, FLAGS["SECCOMP_FILTER_FLAG_SPEC_ALLOW"], None)
        except OSError as e:
            if e.errno == 14:
                spec = dict(spec, flags=["SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
    flags = 0
    given = spec.get("flags") or []
    if not isinstance(given, list):
        raise ConfigError("linux.seccomp.flags", "must be an array")
    for i, name in enumerate(given):
        where = f"linux.seccomp.flags[{i}]"
        if not isinstance(name, str) or name not in FLAGS:
            raise ConfigError(where, f"unknown flag {name!r}")
        bit = FLAGS[name]
        if bit == FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"] and not uses_notify:
            continue
        if bit == FLAGS["SECCOMP_FILTER_FLAG_TSYNC"]:
            continue  # init is one thread when it loads the filter: nothing to sync (runc)
        probe = bit | (FLAG_NEW_LISTENER if bit == 32 else 0)
        try:
            sc.seccomp(SECCOMP_SET_MODE_FILTER, probe, None)
        except OSError as e:
            if e.errno != 14:  # EFAULT: the flags are known, the (NULL) program is not
                raise ConfigError(where, f"{name} is not supported by this kernel") from None
        flags |= bit
    if uses_notify:
        flags |= FLAG_NEW_LISTENER
    return flags


def _check_action_avail(act, name, where, cache):
    base = act & 0xFFFF0000
    if base in cache:
        return
    try:
        sc.seccomp(SECCOMP_GET_ACTION_AVAIL, 0, base)
    except OSError as e:
        if e.errno in (95, 22):  # EOPNOTSUPP / EINVAL (old kernels)
            raise ConfigError(where, f"{name} is not supported by this kernel") from None
        raise
    cache.add(base)


def build_filter(spec, where="linux.seccomp"):
    """Translate a linux.seccomp object into a Filter; ConfigError on bad input."""
    if not isinstance(spec, dict):
        raise ConfigError(where, "must be an object")
    avail = set()
    default_name = spec.get("defaultAction")
    if default_name is None:
        raise ConfigError(f"{where}.defaultAction", "is required")
    default = _action(default_name, spec.get("defaultErrnoRet"), f"{where}.defaultAction",
                      f"{where}.defaultErrnoRet")
    if default_name == "SCMP_ACT_NOTIFY":
        raise ConfigError(f"{where}.defaultAction",
                          "SCMP_ACT_NOTIFY cannot be the default action")
    _check_action_avail(default, default_name, f"{where}.defaultAction", avail)
    calls = spec.get("syscalls") or []
    if not isinstance(calls, list):
        raise ConfigError(f"{where}.syscalls", "must be an array")
    uses_notify = False
    rules = []  # (action, names, [(arg, op, a, b)], where) validated before libseccomp
    for i, call in enumerate(calls):
        cw = f"{where}.syscalls[{i}]"
        if not isinstance(call, dict):
            raise ConfigError(cw, "must be an object")
        names = call.get("names")
        if not isinstance(names, list) or not names:
            raise ConfigError(f"{cw}.names", "must be a non-empty array of syscall names")
        for j, n in enumerate(names):
            if not isinstance(n, str) or not n:
                raise ConfigError(f"{cw}.names[{j}]", "must be a non-empty string")
        act_name = call.get("action")
        if act_name is None:
            raise ConfigError(f"{cw}.action", "is required")
        act = _action(act_name, call.get("errnoRet"), f"{cw}.action", f"{cw}.errnoRet")
        _check_action_avail(act, act_name, f"{cw}.action", avail)
        if act_name == "SCMP_ACT_NOTIFY":
            uses_notify = True
            for j, n in enumerate(names):
                if n in _NO_NOTIFY:
                    raise ConfigError(f"{cw}.names[{j}]", f"SCMP_ACT_NOTIFY cannot be used "
                                      f"for the {n} syscall (the runtime itself needs it "
                                      "once the filter is loaded)")
        args = call.get("args") or []
        if not isinstance(args, list):
            raise ConfigError(f"{cw}.args", "must be an array")
        conds = []
        for k, a in enumerate(args):
            aw = f"{cw}.args[{k}]"
            if not isinstance(a, dict):
                raise ConfigError(aw, "must be an object")
            if "index" not in a:
                raise ConfigError(f"{aw}.index", "is required")
            if "value" not in a:
                raise ConfigError(f"{aw}.value", "is required")
            if "op" not in a:
                raise ConfigError(f"{aw}.op", "is required")
            idx = _uint(a["index"], f"{aw}.index", 5)
            op = OPERATORS.get(a["op"]) if isinstance(a["op"], str) else None
            if op is None:
                raise ConfigError(f"{aw}.op", f"unknown operator {a['op']!r}")
            v1 = _uint(a["value"], f"{aw}.value", 2**64 - 1)
            v2 = _uint(a.get("valueTwo", 0), f"{aw}.valueTwo", 2**64 - 1)
            conds.append((idx, op, v1, v2))
        if act == default:
            continue  # redundant; libseccomp would refuse it
        rules.append((act, names, conds, cw))
    if uses_notify and not spec.get("listenerPath"):
        raise ConfigError(f"{where}.listenerPath",
                          "is required when a rule uses SCMP_ACT_NOTIFY")
    lp = spec.get("listenerPath")
    if lp is not None and (not isinstance(lp, str) or not lp.startswith("/")):
        raise ConfigError(f"{where}.listenerPath", "must be an absolute path")
    md = spec.get("listenerMetadata")
    if md is not None and not isinstance(md, str):
        raise ConfigError(f"{where}.listenerMetadata", "must be a string")
    if not isinstance(spec.get("architectures") or [], list):
        raise ConfigError(f"{where}.architectures", "must be an array")
    flags = _flags(spec, uses_notify)
    log.LOG.debug(f"seccomp filter flags: {flags & ~FLAG_NEW_LISTENER}")  # runc's line
    prog = _compile_cached(default, spec.get("architectures") or [], rules, where)
    return Filter(prog, flags, lp if uses_notify else None, spec.get("listenerMetadata"))


# Bump when _compile's output for the same input changes.
_CACHE_FORMAT = 2


def _compile_cached(default, arches, rules, where):
    """_compile, with its program kept in ocirt's cache (config.cache_get) keyed by
    everything it depends on: the translated rules, the machine and the libseccomp
    library file (checked by identity on every hit). Docker's default profile costs
    ~45 ms to import libseccomp and compile, a hit ~0.2 ms. Warnings (unknown syscall
    names) are stored with the program and logged again on a hit."""
    key = repr((_CACHE_FORMAT, os.uname().machine, default, arches, rules, where)).encode()
    hit = config.cache_get("seccomp", key)
    if hit is not None:
        head, _, prog = hit.partition(b"\n")
        try:
            meta = jsonfast.loads(head)
            if _lib_identity(meta["lib"]) == meta["id"] and len(prog) == meta["len"]:
                for w in meta["warnings"]:
                    _warn(w)
                return prog
        except (ValueError, KeyError, TypeError):
            pass
    warnings = []
    prog = _compile(default, arches, rules, where, warnings)
    lib = _loaded_lib()
    if lib is not None:
        meta = {"lib": lib, "id": _lib_identity(lib), "len": len(prog), "warnings": warnings}
        config.cache_put("seccomp", key, jsonfast.dumps(meta).encode() + b"\n" + prog)
    return prog


def _loaded_lib():
    """The path of the libseccomp this process has loaded (from /proc/self/maps)."""
    try:
        with open("/proc/self/maps", "rb") as f:
            for line in f.read().decode(errors="replace").splitlines():
                fields = line.split(None, 5)
                path = fields[5].strip() if len(fields) == 6 else ""
                if path.startswith("/") and "/libseccomp.so" in path:
                    return path
    except OSError:
        pass
    return None


def _lib_identity(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def _compile(default, arches, rules, where, warnings=None):
    ps = _pyseccomp()
    raw = ps._libseccomp
    try:
        f = ps.SyscallFilter(default)
    except OSError as e:
        raise ConfigError(f"{where}.defaultAction", f"libseccomp refused it: {e.strerror}") from None
    native = ps.system_arch()
    for i, a in enumerate(arches):
        aw = f"{where}.architectures[{i}]"
        if not isinstance(a, str) or not a.startswith("SCMP_ARCH_"):
            raise ConfigError(aw, f"unknown architecture {a!r}")
        token = raw.seccomp_arch_resolve_name(a[len("SCMP_ARCH_"):].lower().encode())
        if not token:
            raise ConfigError(aw, f"{a} is not supported by the libseccomp on this host")
        if token == native:
            continue
        try:
            f.add_arch(token)
        except OSError as e:
            if e.errno != 17:  # EEXIST: listed twice
                raise ConfigError(aw, f"cannot add {a}: {e.strerror}") from None
    if len(rules) > 32:
        try:
            f.set_attr(ps.Attr.CTL_OPTIMIZE, 2)  # binary tree: fewer instructions per call
        except OSError:
            pass
    top = -1  # the highest native syscall number the rules name
    for act, names, conds, cw in rules:
        per_arg = {}
        for c in conds:
            per_arg[c[0]] = per_arg.get(c[0], 0) + 1
        # Conditions on distinct arguments are ANDed in one rule; two on the same
        # argument can't be, so each becomes its own rule (OR), as runc does.
        groups = [conds] if all(n == 1 for n in per_arg.values()) else [[c] for c in conds]
        for j, name in enumerate(names):
            nr = raw.seccomp_syscall_resolve_name(name.encode())
            if nr == -1:  # __NR_SCMP_ERROR: unknown to libseccomp here
                msg = f"{cw}.names[{j}]: unknown syscall {name!r} ignored"
                _warn(msg)
                if warnings is not None:
                    warnings.append(msg)
                continue
            top = max(top, nr)
            for g in groups:
                try:
                    f.add_rule(act, nr, *[ps.Arg(*c) for c in g])
                except OSError as e:
                    detail = {17: "it conflicts with an earlier rule for the same syscall",
                              22: "libseccomp refused the rule (invalid argument)",
                              13: "libseccomp refused the rule"}.get(e.errno, e.strerror)
                    raise ConfigError(f"{cw}.names[{j}]", f"{name}: {detail}") from None
    fd = os.memfd_create("ocirt-seccomp", os.MFD_CLOEXEC)
    try:
        f.export_bpf(_FD(fd))
        size = os.lseek(fd, 0, os.SEEK_END)
        prog = _enosys_stub(default, top) + os.pread(fd, size, 0)
        if len(prog) // 8 > 4096:
            raise ConfigError(where, f"the filter is too long for the kernel "
                              f"({len(prog) // 8} BPF instructions, at most 4096)")
        return prog
    except OSError as e:
        raise ConfigError(where, f"libseccomp cannot export the filter: {e.strerror}") from None
    finally:
        os.close(fd)


_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7, "ppc64le": 0xC0000015,
               "s390x": 0x80000016, "riscv64": 0xC00000F3}


def _enosys_stub(default, top):
    """BPF put before libseccomp's program: a native syscall numbered above every one
    the profile names fails with ENOSYS, not the default action, so a syscall newer
    than the profile looks missing and libc falls back (runc does the same). Only
    when the default refuses (an ALLOW or LOG default lets everything through)."""
    arch = _AUDIT_ARCH.get(os.uname().machine)
    if arch is None or top < 0 or default in (ACTIONS["SCMP_ACT_ALLOW"],
                                               ACTIONS["SCMP_ACT_LOG"]):
        return b""
    ld_abs, jeq, jgt, ret = 0x20, 0x15, 0x25, 0x06

    def ins(code, jt, jf, k):
        return struct.pack("HBBI", code, jt, jf, k)
    return b"".join((ins(ld_abs, 0, 0, 4),            # A = seccomp_data.arch
                     ins(jeq, 0, 3, arch),            # another arch: the program decides
                     ins(ld_abs, 0, 0, 0),            # A = seccomp_data.nr
                     ins(jgt, 0, 1, top),             # not above the profile's: go on
                     ins(ret, 0, 0, 0x00050000 | 38)))  # SECCOMP_RET_ERRNO | ENOSYS


class _FD:
    def __init__(self, fd):
        self.fd = fd

    def fileno(self):
        return self.fd


def recv_notify_fd(msg):
    """The notify fd attached to a {"type": "seccomp-fd"} channel message."""
    fds = msg.get("fds") or []
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise OcirtError("seccomp: the notify fd did not arrive")
    return fds[0]


def features():
    """The linux.seccomp member of the features document."""
    try:
        ps = _pyseccomp()
        enabled = True
    except (OSError, RuntimeError, ImportError):
        enabled = False
    supported = []
    for name, bit in FLAGS.items():
        try:
            sc.seccomp(SECCOMP_SET_MODE_FILTER, bit | (FLAG_NEW_LISTENER if bit == 32 else 0),
                       None)
        except OSError as e:
            if e.errno == 14:
                supported.append(name)
    archs = []
    if enabled:
        raw = ps._libseccomp
        archs = [a for a in ARCHES
                 if raw.seccomp_arch_resolve_name(a[len("SCMP_ARCH_"):].lower().encode())]
    return {"enabled": enabled, "actions": list(ACTIONS), "operators": list(OPERATORS),
            "archs": archs, "knownFlags": list(FLAGS), "supportedFlags": supported}
