"""Loading config.json: parse, validate against spec/config-schema.json, then the
checks a schema can't express. Everything is checked before any process exists."""
import os
import fcntl

from . import jsonfast
from .errors import ConfigError
from . import OCI_VERSION
from .log import LOG
from .lazy import attrs, fields, mounts, schema

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
    if b"\\u0000" in raw:  # a NUL can only come escaped; C would cut the string there
        check_no_nul(cfg)
    res = (cfg.get("linux") or {}).get("resources") if isinstance(cfg, dict) else None
    if isinstance(res, dict):
        fold_go_keys(res)
    if b"null" in raw and isinstance(cfg, dict):
        drop_nulls(cfg)
    if b'"path": ""' in raw or b'"path":""' in raw:  # Go's zero value: no path
        for n in ((cfg.get("linux") or {}).get("namespaces") or []) if isinstance(cfg, dict) \
                else []:
            if isinstance(n, dict) and n.get("path") == "":
                del n["path"]
    # The schema check depends on the bytes alone: a document that passed once
    # passes again (the semantic checks, which look at the host, always run).
    key = raw + b"\0" + _schema_stamp()
    verdict = cache_get("schema", key) if isinstance(cfg, dict) else None
    if verdict is None:
        check(cfg)
        unknown = fields.unknown_fields(cfg)
        verdict = "\n".join(["ok"] + unknown).encode()
        cache_put("schema", key, verdict)
    else:
        _check_semantics(cfg)
    if verdict != b"ok":
        _warn_unknown(cfg, verdict.decode().split("\n")[1:])
    _warn_without_effect(cfg)
    return cfg


def _warn_without_effect(cfg):
    """What the spec allows but the kernel will not do, said rather than dropped."""
    for i, m in enumerate(cfg.get("mounts") or ()):
        opts = m.get("options") or ()
        if m.get("type") != "bind" and "bind" not in opts and "rbind" not in opts:
            continue
        data = mounts.parse_options(opts, f"mounts[{i}]").data
        if data:
            LOG.warning(f"mounts[{i}].options: {data} has no effect on a bind mount "
                        "(a bind mount takes no filesystem data)")
    linux = cfg.get("linux") or {}
    if linux.get("mountLabel"):
        if not attrs.selinux_enabled():  # nothing to label (runtime-tools runs it so; runc too)
            LOG.warning("linux.mountLabel: SELinux is not enabled on this host: the mounts "
                        "get no label")
    devs = linux.get("devices")
    if devs and any(n.get("type") == "user" for n in linux.get("namespaces") or ()):
        for i, d in enumerate(devs):
            given = [k for k in ("fileMode", "uid", "gid") if k in d]
            if given:
                LOG.warning(f"linux.devices[{i}]: {', '.join(given)} not applied: in a user "
                            "namespace the device is the host's node, bind-mounted, with "
                            "the host's mode and owner")


def _warn_unknown(cfg, fields):
    """Fields ocirt does not know (a newer spec's, or typos) are said once, not dropped
    without a word; the container runs as an engine sending its own version expects."""
    ver = cfg.get("ociVersion")
    newer = ""
    if isinstance(ver, str) and _version_key(ver) > _version_key(OCI_VERSION):
        newer = f" (ociVersion {ver} is newer than ocirt's {OCI_VERSION})"
    LOG.warning(f"config.json{newer}: ignoring field{'s' if len(fields) > 1 else ''} "
                f"ocirt does not know: {', '.join(fields)}")


def _version_key(v):
    core, _, pre = v.partition("-")
    nums = []
    for part in core.split(".")[:3]:
        nums.append(int(part) if part.isdigit() else 0)
    return tuple(nums + [0] * (3 - len(nums))) + ((0,) if pre else (1,))


def check(cfg):
    if not isinstance(cfg, dict):
        raise ConfigError("", "config.json must be a JSON object")
    schema.validate(cfg, "config")
    _check_semantics(cfg)


def _schema_stamp():
    """What a cached schema verdict depends on besides the document: the schema file
    and the validator (identity and modification time of each)."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    for p in (os.path.join(here, "schema.py"), os.path.join(here, "..", "spec", "config-schema.json"),
              os.path.join(here, "spec", "config-schema.json")):
        try:
            st = os.stat(p)
            out.append(f"{p}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            out.append(p + ":-")
    return "|".join(out).encode()


# --- a cache of results that depend only on content (schema verdicts, seccomp programs)
#
# In a directory only this user can write (/run/ocirt-cache for root,
# $XDG_RUNTIME_DIR/ocirt-cache otherwise; OCIRT_CACHE_DIR overrides, empty disables).
# Bounded: an entry lives in one of 256 slots per kind, named by the first byte of
# the SHA-256 of its key (every container of an engine has a config of its own, so
# one file per key would grow without end); a newer key takes the slot. Each file
# holds the key's digest and the payload's, checked on every read, so another key
# or a torn write is a miss, never a wrong answer.

_cache_ok = None


def cache_dir():
    d = os.environ.get("OCIRT_CACHE_DIR")
    if d is None:
        if os.geteuid() == 0:
            d = "/run/ocirt-cache"
        else:
            xdg = os.environ.get("XDG_RUNTIME_DIR")
            d = os.path.join(xdg, "ocirt-cache") if xdg else ""
    return d or None


def _sha256(data):
    try:
        from _sha256 import sha256
    except ImportError:  # Python >= 3.12 (or a build without it)
        from hashlib import sha256
    return sha256(data)


def _entry(kind, key):
    global _cache_ok
    d = cache_dir()
    if d is None:
        return None
    if _cache_ok is None:
        try:
            st = os.stat(d)
            _cache_ok = st.st_uid == os.geteuid() and not (st.st_mode & 0o022) \
                and (st.st_mode & 0o170000) == 0o040000
        except FileNotFoundError:
            _cache_ok = "missing"
        except OSError:
            _cache_ok = False
    if not _cache_ok:
        return None
    digest = _sha256(key).hexdigest()
    return os.path.join(d, f"{kind}-{digest[:2]}"), digest.encode()


def cache_get(kind, key):
    """The payload stored for `key`, or None."""
    entry = _entry(kind, key)
    if entry is None or _cache_ok == "missing":
        return None
    path, keyd = entry
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        data = b""
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        os.close(fd)
    stored_key, _, rest = data.partition(b"\n")
    digest, _, payload = rest.partition(b"\n")
    if stored_key != keyd or digest != _sha256(payload).hexdigest().encode():
        return None
    return payload


def cache_put(kind, key, payload):
    """Store `payload` for `key`; failures are ignored (the cache is only a cache)."""
    global _cache_ok
    entry = _entry(kind, key)
    if entry is None:
        return
    path, keyd = entry
    try:
        if _cache_ok == "missing":
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            st = os.stat(os.path.dirname(path))
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                _cache_ok = False
                return
            _cache_ok = True
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                     0o600)
        try:
            os.write(fd, keyd + b"\n" + _sha256(payload).hexdigest().encode() + b"\n"
                     + payload)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass


def drop_nulls(obj):
    """A member whose value is null is taken as absent, as Go (runc) decodes it: jq and
    Go-written configs say "timeOffsets": null for "none". Nulls in arrays stay (and
    fail the schema there)."""
    if isinstance(obj, dict):
        for k in [k for k, v in obj.items() if v is None]:
            del obj[k]
        for v in obj.values():
            drop_nulls(v)
    elif isinstance(obj, list):
        for v in obj:
            drop_nulls(v)


_RESOURCE_KEYS = {k.lower(): k for k in (
    "memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "rdma", "unified",
    "devices", "limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness",
    "disableOOMKiller", "useHierarchy", "checkBeforeUpdate", "shares", "quota", "burst",
    "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems", "idle", "weight",
    "leafWeight", "weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice",
    "throttleReadIOPSDevice", "throttleWriteIOPSDevice", "major", "minor", "rate",
    "pageSize", "classID", "priorities", "name", "priority", "allow", "type", "access",
    "hcaHandles", "hcaObjects")}


def fold_go_keys(res):
    """runc decodes JSON with Go, whose member names match case-insensitively, and
    configs written for it say `CPU`, `Cpus` or `pagesize` (runc's own suite does):
    LinuxResources member names are taken whatever their case. The names under
    `unified` (cgroup files) and `rdma` (devices) are data and stay as they are."""
    if any(isinstance(k, str) and _RESOURCE_KEYS.get(k.lower(), k) != k for k in res):
        items = list(res.items())
        res.clear()
        for k, v in items:  # in document order, as Go decodes: a later key wins, and
            canon = _RESOURCE_KEYS.get(k.lower(), k)  # objects merge into earlier ones
            if isinstance(res.get(canon), dict) and isinstance(v, dict):
                res[canon].update(v)
            else:
                res[canon] = v
    for k, v in res.items():
        if k in ("unified", "rdma"):
            if k == "rdma" and isinstance(v, dict):
                for dev in v.values():
                    if isinstance(dev, dict):
                        fold_go_keys(dev)
            continue
        for item in (v if isinstance(v, list) else [v]):
            if isinstance(item, dict):
                fold_go_keys(item)


def check_no_nul(obj, where=""):
    """Refuse a NUL character in any string (a key or a value), naming its path:
    the kernel would see the string cut short there."""
    if isinstance(obj, str):
        if "\0" in obj:
            raise ConfigError(where, f"contains a NUL character: {obj!r}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            sub = f"{where}.{k}" if where else str(k)
            if "\0" in k:
                raise ConfigError(sub, "a key contains a NUL character")
            check_no_nul(v, sub)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            check_no_nul(v, f"{where}[{i}]")


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
        # rootfs: re-propagating it would change the host. (A read-only root gets a
        # bind mount of its own: process/init.py.)
        if linux.get("rootfsPropagation"):
            raise ConfigError("linux.rootfsPropagation", "needs a mount namespace in "
                              "linux.namespaces")
    for key in ("uidMappings", "gidMappings"):
        if linux.get(key) and "user" not in seen:
            raise ConfigError(f"linux.{key}", "mappings need a user namespace in linux.namespaces")
    if "timeOffsets" in linux and "time" not in seen:
        raise ConfigError("linux.timeOffsets", "offsets need a time namespace in linux.namespaces")
    for clock in linux.get("timeOffsets") or {}:
        if clock not in ("monotonic", "boottime"):  # what time_namespaces(7) can offset
            raise ConfigError(f"linux.timeOffsets.{clock}", "a time namespace offsets only "
                              "the monotonic and boottime clocks")
    if linux.get("timeOffsets") and any(n.get("type") == "time" and n.get("path")
                                        for n in linux.get("namespaces") or []):
        raise ConfigError("linux.timeOffsets", "a joined time namespace keeps its own offsets "
                          "(they can only be set on a new one)")
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
