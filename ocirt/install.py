"""Register ocirt as a Docker runtime in daemon.json (`ocirt install`) and remove it
again (`ocirt uninstall`).

The file is read whole, changed as a dict (every other key kept, in order) and
written atomically: a temporary file beside it, fsync, rename over it, fsync of
the directory; a symlinked daemon.json is written through to its target. A file
that is not a JSON object (or whose "runtimes" is not an object) is an error and
is left untouched. Writing what is already there writes nothing.
"""
import json
import os
import sys

from .errors import OcirtError
from .lazy import shutil

DEFAULT_CONFIG = "/etc/docker/daemon.json"
DEFAULT_NAME = "ocirt"
DEFAULT_PATH = "/usr/local/bin/ocirt"
# Names dockerd keeps for itself: a runtimes entry with one of them stops it starting.
RESERVED = ("runc", "io.containerd.runc.v2", "io.containerd.runtime.v1.linux")


def read(path):
    """daemon.json as a dict ({} when absent or empty); OcirtError when malformed."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise OcirtError(f"cannot read {path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise OcirtError(f"{path}: not UTF-8 text (byte {e.start}); nothing changed") from None
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise OcirtError(f"{path}: not valid JSON: {e}; nothing changed") from None
    if not isinstance(doc, dict):
        raise OcirtError(f"{path}: the top level is a JSON {_kind(doc)}, not an object; "
                         "nothing changed")
    rts = doc.get("runtimes")
    if rts is not None and not isinstance(rts, dict):
        raise OcirtError(f"{path}: runtimes: is a JSON {_kind(rts)}, not an object; "
                         "nothing changed")
    return doc


def _kind(v):
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            type(None): "null"}.get(type(v), "number")


def write(path, doc):
    """Replace `path` with `doc` atomically, keeping the file's mode (0644 when new)."""
    target = os.path.realpath(path)
    d = os.path.dirname(target) or "."
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
        os.makedirs(d, mode=0o755, exist_ok=True)
    data = (json.dumps(doc, indent=4) + "\n").encode()
    tmp = os.path.join(d, f".{os.path.basename(target)}.ocirt-{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, target)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OcirtError(f"cannot write {target}: {e.strerror}") from None
    try:
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def check_name(name):
    if not name or "/" in name or any(c.isspace() for c in name):
        raise OcirtError(f"--runtime {name!r}: a runtime name is a non-empty word")
    if name in RESERVED:
        raise OcirtError(f"--runtime {name!r}: dockerd reserves that name; choose another")


def install(config=DEFAULT_CONFIG, name=DEFAULT_NAME, binary=DEFAULT_PATH, default=False,
            runtime_args=()):
    """Add (or update) runtimes[name] = {"path": binary[, "runtimeArgs": [...]]};
    with `default`, also set "default-runtime". Returns "added", "updated" or "unchanged"."""
    check_name(name)
    old = read(config)
    doc = dict(old or {})
    rts = dict(doc.get("runtimes") or {})
    entry = {"path": binary}
    if runtime_args:
        entry["runtimeArgs"] = list(runtime_args)
    before = rts.get(name)
    if isinstance(before, dict):
        # Keep keys dockerd may know that ocirt install does not set.
        merged = {k: v for k, v in before.items() if k not in ("path", "runtimeArgs")}
        merged.update(entry)
        entry = merged
    rts[name] = entry
    doc["runtimes"] = rts
    if default:
        doc["default-runtime"] = name
    if old is not None and doc == old:
        return "unchanged"
    write(config, doc)
    return "added" if before is None else "updated"


def uninstall(config=DEFAULT_CONFIG, name=DEFAULT_NAME):
    """Remove runtimes[name] (and "default-runtime" when it names it; an emptied
    "runtimes" goes too). Returns "removed" or "absent"."""
    old = read(config)
    if old is None:
        return "absent"
    doc = dict(old)
    rts = dict(doc.get("runtimes") or {})
    removed = name in rts
    if removed:
        del rts[name]
        if rts:
            doc["runtimes"] = rts
        else:
            del doc["runtimes"]
    if doc.get("default-runtime") == name:
        del doc["default-runtime"]
    if doc == old:
        return "absent"
    write(config, doc)
    return "removed" if removed else "default-removed"


def self_path():
    """The path of the ocirt command now running (its launcher script), made
    absolute; /usr/local/bin/ocirt when run some other way (python -m ocirt)."""
    p = sys.argv[0] if sys.argv else ""
    if p and os.path.basename(p) != "__main__.py" and not p.endswith(".py"):
        if os.sep not in p:
            p = shutil.which(p) or p
        p = os.path.abspath(p)
        if os.access(p, os.X_OK) and os.path.isfile(p):
            return p
    return DEFAULT_PATH
