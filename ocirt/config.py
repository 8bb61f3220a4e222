"""Loading config.json: parse, validate against spec/config-schema.json, then the
checks a schema can't express. Everything is checked before any process exists."""
import os

from . import jsonfast
from .errors import ConfigError

NAMESPACES = {  # OCI type -> (CLONE_NEW* flag, /proc/self/ns name)
    "pid": (0x20000000, "pid"),
    "network": (0x40000000, "net"),
    "mount": (0x00020000, "mnt"),
    "ipc": (0x08000000, "ipc"),
    "uts": (0x04000000, "uts"),
    "user": (0x10000000, "user"),
    "cgroup": (0x02000000, "cgroup"),
    "time": (0x00000080, "time"),
}
_NS_GET_NSTYPE = 0xB703


def load(bundle):
    """Return the validated config of `bundle` (an absolute path)."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError("", f"{path} does not exist") from None
    except OSError as e:
        raise ConfigError("", f"cannot read {path}: {e.strerror}") from None
    try:
        cfg = jsonfast.loads(raw)
    except ValueError as e:
        raise ConfigError("", f"config.json is not valid JSON: {e}") from None
    check(cfg)
    return cfg


def check(cfg):
    if not isinstance(cfg, dict):
        raise ConfigError("", "config.json must be a JSON object")
    from . import schema
    schema.validate(cfg, "config")
    _check_semantics(cfg)


def _check_semantics(cfg):
    ver = cfg.get("ociVersion", "")
    if not ver.startswith("1."):
        raise ConfigError("ociVersion", f"unsupported version {ver!r} (ocirt supports 1.x)")
    proc = cfg.get("process")
    if proc is not None:
        cwd = proc.get("cwd", "/")
        if not cwd.startswith("/"):
            raise ConfigError("process.cwd", f"must be an absolute path, not {cwd!r}")
        if not proc.get("args"):
            raise ConfigError("process.args", "must name the program to run")
        rl_seen = set()
        for i, rl in enumerate(proc.get("rlimits") or []):
            if rl.get("type") in rl_seen:
                raise ConfigError(f"process.rlimits[{i}].type",
                                  f"{rl.get('type')} is listed twice")
            rl_seen.add(rl.get("type"))
    linux = cfg.get("linux") or {}
    seen = set()
    for i, ns in enumerate(linux.get("namespaces") or []):
        t = ns.get("type")
        if t in seen:
            raise ConfigError(f"linux.namespaces[{i}].type", f"namespace {t!r} is listed twice")
        seen.add(t)
        p = ns.get("path")
        if p:
            if not p.startswith("/"):
                raise ConfigError(f"linux.namespaces[{i}].path", "must be an absolute path")
            _check_ns_path(f"linux.namespaces[{i}].path", p, t)
    if "mount" not in seen:
        # Without a mount namespace "/" after chroot is the host mount holding the
        # rootfs: remounting or re-propagating it would change the host.
        if (cfg.get("root") or {}).get("readonly"):
            raise ConfigError("root.readonly", "a read-only rootfs needs a mount namespace "
                              "in linux.namespaces")
        if linux.get("rootfsPropagation"):
            raise ConfigError("linux.rootfsPropagation", "needs a mount namespace in "
                              "linux.namespaces")
    for key in ("uidMappings", "gidMappings"):
        if linux.get(key) and "user" not in seen:
            raise ConfigError(f"linux.{key}", "mappings need a user namespace in linux.namespaces")
    if "timeOffsets" in linux and "time" not in seen:
        raise ConfigError("linux.timeOffsets", "offsets need a time namespace in linux.namespaces")
    if (cfg.get("hostname") or cfg.get("domainname")):
        ns = [n for n in linux.get("namespaces") or [] if n.get("type") == "uts"]
        if not ns:
            key = "hostname" if cfg.get("hostname") else "domainname"
            raise ConfigError(key, "setting it needs a uts namespace in linux.namespaces")
    for key in linux.get("sysctl") or {}:
        _check_sysctl(key, seen)
    for i, m in enumerate(cfg.get("mounts") or []):
        if not m.get("destination"):
            raise ConfigError(f"mounts[{i}].destination", "must not be empty")
    for i, d in enumerate(linux.get("devices") or []):
        if not d.get("path", "").startswith("/dev/"):
            raise ConfigError(f"linux.devices[{i}].path", "must be a path under /dev")


_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def _check_sysctl(key, namespaces):
    """A sysctl is only set when it belongs to a namespace the container has, so a
    config can never change the host's kernel settings."""
    where = f"linux.sysctl.{key}"
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        need = "ipc"
    elif key.startswith("net."):
        need = "network"
    elif key in ("kernel.hostname", "kernel.domainname"):
        need = "uts"
    else:
        raise ConfigError(where, "is not namespaced: setting it would change the host")
    if need not in namespaces:
        raise ConfigError(where, f"needs a {need} namespace in linux.namespaces")


def _check_ns_path(where, path, nstype):
    import fcntl
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise ConfigError(where, f"cannot open {path}: {e.strerror}") from None
    try:
        kind = fcntl.ioctl(fd, _NS_GET_NSTYPE)
    except OSError:
        raise ConfigError(where, f"{path} is not a namespace") from None
    finally:
        os.close(fd)
    if kind != NAMESPACES[nstype][0]:
        raise ConfigError(where, f"{path} is not a {nstype} namespace")


def namespaces(cfg):
    """[(type, path or None)] in config order."""
    return [(n["type"], n.get("path") or None)
            for n in (cfg.get("linux") or {}).get("namespaces") or []]
