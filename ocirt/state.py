"""Container state on disk: one directory per id under the root.

<root>/<id>/state.json   the OCI state plus what ocirt needs later (atomic writes)
<root>/<id>/fast         the same, pre-digested for the C front (ocirt/_shim/front.c)
<root>/<id>/exec.sock    exists while the init waits for `start` (status created)
The directory itself is the per-container lock (flock).
"""
import fcntl
import os

from . import OCI_VERSION, jsonfast  # noqa: F401 (OCI_VERSION: state documents say it)
from .errors import ContainerNotFound, OcirtError

_ID_MAX = 1024
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-")


def default_root():
    uid = os.geteuid()
    if uid != 0 or os.environ.get("XDG_RUNTIME_DIR"):
        # $XDG_RUNTIME_DIR/ocirt (checked) when rootless: see ocirt/rootless.py
        from .rootless import default_root as rootless_root
        return rootless_root()
    return f"/run/user/{uid}/ocirt"


def check_id(cid):
    if not cid:
        raise OcirtError("container id cannot be empty")
    if len(cid) > _ID_MAX or cid in (".", "..") or not set(cid) <= _ID_CHARS:
        raise OcirtError(f"invalid container id {cid!r}: use letters, digits and ._-+ only"
                         f" (at most {_ID_MAX} characters)")
    return cid


class Container:
    """A handle on one container's state directory."""

    def __init__(self, root, cid):
        self.root = root
        self.id = check_id(cid)
        self.dir = os.path.join(root, cid)
        self._lockfd = None
        self.state = None

    # --- creation and locking
    def make_dir(self):
        try:
            os.makedirs(self.root, mode=0o711, exist_ok=True)
        except OSError as e:
            raise OcirtError(f"cannot create the state directory {self.root}: "
                             f"{e.strerror}") from None
        try:
            os.mkdir(self.dir, 0o711)
        except FileExistsError:
            raise OcirtError(f"container with id {self.id} already exists") from None
        self.lock()

    def lock(self):
        try:
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotFound(self.id) from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lockfd = fd
        return self

    def unlock(self):
        if self._lockfd is not None:
            os.close(self._lockfd)
            self._lockfd = None

    # --- state.json
    def load(self):
        try:
            self.state = jsonfast.loads(read_file(os.path.join(self.dir, "state.json")))
        except FileNotFoundError:
            raise ContainerNotFound(self.id) from None
        except ValueError:
            raise OcirtError(f"container {self.id}: state.json is corrupt") from None
        return self.state

    def save(self):
        # rename makes the write atomic for readers; no fsync: the state describes
        # processes that a crash ends anyway (and /run is usually a tmpfs)
        path = os.path.join(self.dir, "state.json")
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, jsonfast.dumps(self.state).encode())
        finally:
            os.close(fd)
        os.rename(tmp, path)
        self._save_fast_record()

    def _save_fast_record(self):
        """<dir>/fast: what the C front (ocirt/_shim/front.c) needs to answer state,
        kill, start and delete without Python. Absent, it defers to Python."""
        rec = fast_record(self.state)
        path = os.path.join(self.dir, "fast")
        if rec is None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            return
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, rec)
        finally:
            os.close(fd)
        os.rename(tmp, path)

    def remove_dir(self):
        # The directory holds a few plain files; shutil would cost more to import
        # than the whole removal.
        try:
            for e in os.scandir(self.dir):
                if e.is_dir(follow_symlinks=False):
                    import shutil
                    shutil.rmtree(e.path, ignore_errors=True)
                else:
                    os.unlink(e.path)
            os.rmdir(self.dir)
        except FileNotFoundError:
            pass
        self.unlock()

    # --- status, derived from the live process
    def status(self):
        st = self.state
        freezer, frozen = freezer_of(st.get("x_cgroup"))
        return derive_status(self.dir, st.get("pid", 0), st.get("x_init_start"), freezer,
                             frozen)

    def oci_state(self):
        return oci_state(self.state, self.status())


def freezer_of(cg):
    """(the file that says whether the container is frozen, its content then), or
    (None, None) without a freezer."""
    if not cg:
        return None, None
    if cg.get("driver") == "v2":
        return os.path.join(cg["dir"], "cgroup.freeze"), "1"
    fz = (cg.get("dirs") or {}).get("freezer")
    return (os.path.join(fz, "freezer.state"), "FROZEN") if fz else (None, None)


def derive_status(dirpath, pid, start_time, freezer, frozen):
    """The status rule (the C front repeats it): init's pid alive with its start time,
    else stopped; frozen (a created container too, as runc) is paused; exec.sock
    there is created; else running."""
    if not pid or not process_alive(pid, start_time):
        return "stopped"
    if freezer:
        try:
            if read_file(freezer).strip().decode() == frozen:
                return "paused"
        except OSError:
            pass
    if os.path.exists(os.path.join(dirpath, "exec.sock")):
        return "created"
    return "running"


def fast_oci_state(dirpath):
    """The OCI state from <dir>/fast alone (list reads a thousand of them; state.json
    is several times larger), or None without one."""
    try:
        fields = read_file(os.path.join(dirpath, "fast")).split(b"\0")
    except OSError:
        return None
    rec = dict(zip(fields[0::2], fields[1::2]))
    if rec.get(b"v") != b"1":
        return None
    freezer = rec.get(b"freezer")
    status = derive_status(dirpath, int(rec[b"pid"]), int(rec[b"start"]) or None,
                           freezer and freezer.decode(), rec.get(b"frozen", b"").decode())
    out = jsonfast.loads(rec[b"head"] + b'"%s"' % status.encode() + rec[b"tail"])
    if status == "stopped":
        out["pid"] = 0
    return out


def oci_state(st, status):
    """The OCI state object (runtime.md), in runc's key order."""
    out = {
        "ociVersion": st["ociVersion"],
        "id": st["id"],
        "status": status,
        "pid": st["pid"] if status != "stopped" else 0,
        "bundle": st["bundle"],
        "rootfs": st["rootfs"],
        "created": st["created"],
        "owner": st.get("owner", ""),
    }
    if st.get("annotations"):
        out["annotations"] = st["annotations"]
    return out


_STATUS_MARK = "\x01status"
# The keys of x_cgroup that the front understands (v1 and v2 drivers); a cgroup
# stored with anything else, or placed by systemd, is Python's alone.
_PLAIN_CGROUP_KEYS = frozenset(("driver", "path", "dirs", "hier", "created", "cgroupns",
                                "linux_devices", "dir", "mount", "systemd"))


def own_pid_namespace(st):
    """The container has a pid namespace of its own: its processes die with init.
    (Without one, SIGKILL goes to every process in its cgroup, as runc does.)"""
    ns = (st.get("x_exec") or {}).get("namespaces")
    if ns is None:
        return True  # an older state: as before
    return "pid" in ns and not (st.get("x_exec") or {}).get("pid_joined")


def fast_record(st):
    """The fast record: "key\\0value\\0" pairs, or None when the front must always
    defer for this container. The state JSON is rendered here, around its status,
    so the output is byte for byte what `ocirt state` prints in Python."""
    text = jsonfast.dumps(oci_state(st, _STATUS_MARK), indent=2) + "\n"
    mark = jsonfast.dumps(_STATUS_MARK)
    if text.count(mark) != 1 or "\0" in text:
        return None
    head, tail = text.split(mark)
    rec = [("v", "1"), ("pid", str(st.get("pid") or 0)),
           ("start", str(st.get("x_init_start") or 0)), ("head", head), ("tail", tail),
           ("start_ok", "0" if st.get("x_hooks_poststart") else "1"),
           ("kill_ok", "1" if own_pid_namespace(st) else "0")]
    cg = st.get("x_cgroup")
    plain = not cg or (set(cg) <= _PLAIN_CGROUP_KEYS and not cg.get("systemd"))
    delete_ok = plain and not st.get("x_hooks") and not st.get("x_host_mounts") \
        and not st.get("x_intelrdt")  # its resctrl group goes in Python
    if cg and not plain:
        return None  # the freezer's whereabouts are not known here: no fast status
    if cg:
        if cg.get("driver") == "v2":
            rec += [("freezer", os.path.join(cg["dir"], "cgroup.freeze")), ("frozen", "1")]
            leaves = {cg["dir"]}
        else:
            fz = (cg.get("dirs") or {}).get("freezer")
            if fz:
                rec += [("freezer", os.path.join(fz, "freezer.state")), ("frozen", "FROZEN")]
            leaves = {h[2] for h in cg.get("hier") or []}
        for d in reversed(cg.get("created") or []):
            rec.append(("rm_leaf" if d in leaves else "rm_parent", d))
    rec.append(("delete_ok", "1" if delete_ok else "0"))
    out = "".join(f"{k}\0{v}\0" for k, v in rec)
    if any("\0" in v for _, v in rec) or sum(k.startswith("rm_") for k, _ in rec) > 64:
        return None
    return out.encode()


def read_file(path):
    """A whole file through os.read: list reads thousands, and open() builds an
    io stack for each."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)
    finally:
        os.close(fd)


def proc_start_time(pid):
    """The start time of `pid` (field 22 of /proc/pid/stat) and its state letter."""
    try:
        data = read_file(f"/proc/{pid}/stat")
    except (FileNotFoundError, ProcessLookupError):
        return None, None
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[19]), rest[0].decode()


def process_alive(pid, start_time):
    t, letter = proc_start_time(pid)
    if t is None or letter in ("Z", "X"):
        return False
    return start_time is None or t == start_time


def list_ids(root):
    try:
        return sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []
