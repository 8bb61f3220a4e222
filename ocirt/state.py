"""A container's record on disk: one directory per id under the root, read and
written here only.

<root>/<id>/state.json   the record (atomic writes): the OCI state document's fields
                         at the top, in runc's order and without `status` (derived,
                         never stored), then ocirt's own under "ocirt"
<root>/<id>/exec.sock    exists while the init waits for `start` (status created)
The directory itself is the per-container lock (flock).

The C front (ocirt/_shim/front/) reads the same state.json; the layout it relies on
is written down once in ocirt/rules.py (LAYOUT) and checked by tests/unit/test_rules.py.
"""
import fcntl
import os

from . import OCI_VERSION, jsonfast, rules, status as S
from .errors import ContainerNotFound, OcirtError
from .status import proc_start_time, process_alive  # noqa: F401 (a process's identity)
from .lazy import rootless, shutil

VERSION = rules.LAYOUT["version"]  # of the "ocirt" part; another is refused by name


class State:
    """The record. OCI fields: oci_version, id, pid, bundle, rootfs, created, owner,
    annotations. ocirt's own (`OWN`, with defaults):

    init_start     init's start time (field 22 of /proc/PID/stat): its identity
    freezer        [file, content when frozen] or None: what `paused` means here
    cgroup         the cgroup manager's to_state(), or None (rootless without one)
    host_mounts    no mount namespace: delete unmounts what create mounted
    rootfs_bind    ... and a read-only root's self-bind among them
    hooks_poststop, hooks_poststart   the config's, as created
    exec           what `exec` needs from the config, as created
    intelrdt, netdevices              those managers' records, or None
    front          what the C front may do without Python (`front_policy`)
    """
    OCI = tuple(("oci_version" if k == "ociVersion" else k, k)  # (attribute, member)
                for k in rules.LAYOUT["oci_members"])
    OWN = {"init_start": None, "freezer": None, "cgroup": None, "host_mounts": False,
           "rootfs_bind": False, "hooks_poststop": (), "hooks_poststart": (), "exec": None,
           "intelrdt": None, "netdevices": None}
    __slots__ = tuple(a for a, _ in OCI) + tuple(OWN)

    def __init__(self, cid, bundle, rootfs, created, annotations=None, **own):
        self.oci_version, self.id, self.pid = OCI_VERSION, cid, 0
        self.bundle, self.rootfs, self.created, self.owner = bundle, rootfs, created, ""
        self.annotations = annotations or {}
        for k, default in self.OWN.items():
            setattr(self, k, own.pop(k, default))
        if own:
            raise TypeError(f"State has no field {', '.join(own)}")

    # --- the OCI state document (runtime.md), one view of the record
    def oci(self, status):
        out = {"ociVersion": self.oci_version, "id": self.id, "status": status,
               "pid": self.pid if status != S.STOPPED else 0, "bundle": self.bundle,
               "rootfs": self.rootfs, "created": self.created, "owner": self.owner}
        if self.annotations:
            out["annotations"] = self.annotations
        return out

    def own_pid_namespace(self):
        """The container has a pid namespace of its own: its processes die with init.
        (Without one, SIGKILL goes to every process in its cgroup, as runc does.)"""
        ex = self.exec or {}
        return "pid" in ex.get("namespaces", ("pid",)) and not ex.get("pid_joined")

    # --- on disk
    def to_json(self):
        doc = {key: getattr(self, attr) for attr, key in self.OCI}
        if not self.annotations:
            del doc["annotations"]
        own = {"version": VERSION}
        own.update((k, getattr(self, k)) for k in self.OWN)
        own["hooks_poststop"] = list(self.hooks_poststop)
        own["hooks_poststart"] = list(self.hooks_poststart)
        own["front"] = front_policy(self)
        doc[rules.LAYOUT["own_member"]] = own  # last: the front cuts the OCI document there
        return jsonfast.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, data, cid="?"):
        doc = jsonfast.loads(data)
        own = doc.get(rules.LAYOUT["own_member"]) if isinstance(doc, dict) else None
        if not isinstance(own, dict) or own.get("version") != VERSION:
            raise OcirtError(f"container {cid}: state.json is of another ocirt version "
                             "(delete it with that version, or remove its directory)")
        st = cls.__new__(cls)
        g = doc.get
        # spelled out: list reads a thousand of these, and setattr in a loop costs twice
        st.oci_version, st.id, st.pid, st.bundle = g("ociVersion"), g("id"), g("pid"), g("bundle")
        st.rootfs, st.created, st.owner = g("rootfs"), g("created"), g("owner") or ""
        st.annotations = g("annotations") or {}
        g = own.get
        st.init_start, st.freezer, st.cgroup = g("init_start"), g("freezer"), g("cgroup")
        st.host_mounts, st.rootfs_bind = g("host_mounts", False), g("rootfs_bind", False)
        st.hooks_poststop, st.hooks_poststart = g("hooks_poststop", ()), g("hooks_poststart", ())
        st.exec, st.intelrdt, st.netdevices = g("exec"), g("intelrdt"), g("netdevices")
        return st


def front_policy(st):
    """What the C front may do for this container without Python, as data (the front
    decides nothing itself): `start` without poststart hooks, `kill` of init alone when
    the pid namespace is the container's, `delete` of a stopped one whose cgroup dirs
    it can remove itself (`remove`: [[kind, dir]...], kind "leaf" or "parent").
    Anything else -- a systemd unit, hooks, host mounts, RDT, devices -- is Python's."""
    cg = st.cgroup
    plain = not cg or (set(cg) <= _PLAIN_CGROUP_KEYS and not cg.get("systemd"))
    remove = []
    if cg and plain:
        leaves = {cg["dir"]} if cg.get("driver") == "v2" else \
            {h[2] for h in cg.get("hier") or []}
        remove = [["leaf" if d in leaves else "parent", d]
                  for d in reversed(cg.get("created") or [])]
    delete = plain and not st.hooks_poststop and not st.host_mounts \
        and not st.intelrdt and not st.netdevices and len(remove) <= rules.FRONT_MAX_REMOVE
    return {"start": not st.hooks_poststart, "kill": st.own_pid_namespace(),
            "delete": delete, "remove": remove if delete else [],
            "status": plain}  # a freezer the front can read


# The keys of a cgroup record the front understands (the v1 and v2 fs drivers).
_PLAIN_CGROUP_KEYS = frozenset(("driver", "path", "dirs", "hier", "created", "cgroupns",
                                "linux_devices", "dir", "mount", "systemd"))


def freezer_of(cg):
    """[the file that says whether the container is frozen, its content then], or None
    without a freezer."""
    if not cg:
        return None
    if cg.get("driver") == "v2":
        return [os.path.join(cg["dir"], "cgroup.freeze"), "1"]
    fz = (cg.get("dirs") or {}).get("freezer")
    return [os.path.join(fz, "freezer.state"), "FROZEN"] if fz else None


def default_root():
    uid = os.geteuid()
    if uid != 0 or os.environ.get("XDG_RUNTIME_DIR"):
        # $XDG_RUNTIME_DIR/ocirt (checked) when rootless: see ocirt/rootless.py
        return rootless.default_root()
    return rules.DEFAULT_ROOT.format(uid=uid)


def check_id(cid):
    if not cid:
        raise OcirtError("container id cannot be empty")
    if not rules.valid_id(cid):
        raise OcirtError(f"invalid container id {cid!r}: use letters, digits and ._-+ only"
                         f" (at most {rules.ID_MAX} characters)")
    return cid


class Record:
    """A handle on one container's directory: lock, load, save, status, remove."""

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
                             f"{e.strerror}", errno=e.errno) from None
        try:
            os.mkdir(self.dir, 0o711)
        except FileExistsError:
            raise OcirtError(f"container with id {self.id} already exists", errno=17) from None
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

    def load(self):
        try:
            data = read_file(os.path.join(self.dir, rules.STATE_FILE))
        except FileNotFoundError:
            raise ContainerNotFound(self.id) from None
        try:
            self.state = State.from_json(data, self.id)
        except ValueError:
            raise OcirtError(f"container {self.id}: state.json is corrupt") from None
        return self.state

    def save(self):
        # rename makes the write atomic for readers; no fsync: the state describes
        # processes that a crash ends anyway (and /run is usually a tmpfs)
        path = os.path.join(self.dir, rules.STATE_FILE)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, self.state.to_json().encode())
        finally:
            os.close(fd)
        os.rename(tmp, path)

    def remove_dir(self):
        # The directory holds a few plain files; shutil would cost more to import
        # than the whole removal.
        try:
            for e in os.scandir(self.dir):
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path, ignore_errors=True)
                else:
                    os.unlink(e.path)
            os.rmdir(self.dir)
        except FileNotFoundError:
            pass
        self.unlock()

    # --- status, derived from the live process (ocirt/status.py has the order)
    def status(self):
        return derive_status(self.dir, self.state)

    def oci_state(self):
        return self.state.oci(self.status())


def oci_state_at(dirpath, cid):
    """The OCI state of the container whose directory is `dirpath` (what list needs,
    without a Record: no lock, no id check; the name came from the directory). Only
    the OCI members and the three of ocirt's that the status needs are parsed: list
    reads a thousand records, whose cgroup and exec parts are most of each."""
    data = read_file(dirpath + "/" + rules.STATE_FILE).decode()
    cut = data.find(_OWN_MARK)
    own = jsonfast.members(data, cut + len(_OWN_MARK), ("version", "init_start", "freezer")) \
        if cut > 0 else None
    head = data[:cut].rstrip()
    if own is None or own.get("version") != VERSION or not head.endswith(","):
        st = State.from_json(data, cid)  # anything unusual: the one full reader decides
        return st.oci(derive_status(dirpath, st))
    doc = jsonfast.loads(head[:-1] + "}")
    st = _StatusFields(doc.get("pid"), own.get("init_start"), own.get("freezer"))
    status = derive_status(dirpath, st)
    out = {"ociVersion": doc.get("ociVersion"), "id": doc.get("id"), "status": status,
           "pid": st.pid if status != S.STOPPED else 0, "bundle": doc.get("bundle"),
           "rootfs": doc.get("rootfs"), "created": doc.get("created"),
           "owner": doc.get("owner") or ""}
    if doc.get("annotations"):
        out["annotations"] = doc["annotations"]
    return out


# how to_json writes the start of ocirt's own member (rules.LAYOUT: last, indented)
_OWN_MARK = "\n" + " " * rules.LAYOUT["indent"] + jsonfast.dumps(rules.LAYOUT["own_member"]) \
    + ": "


class _StatusFields:
    __slots__ = ("pid", "init_start", "freezer")

    def __init__(self, pid, init_start, freezer):
        self.pid, self.init_start, self.freezer = pid, init_start, freezer


def derive_status(dirpath, st):
    """status.ORDER, asked of the record and the live process."""
    if not st.pid or not process_alive(st.pid, st.init_start):
        return S.STOPPED
    if st.freezer:
        try:
            if read_file(st.freezer[0]).strip() == st.freezer[1].encode():
                return S.PAUSED
        except OSError:
            pass
    if os.path.exists(os.path.join(dirpath, rules.EXEC_SOCK)):
        return S.CREATED
    return S.RUNNING


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


def list_ids(root):
    try:
        return sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []
