"""linux.intelRdt: the container's group in the resctrl filesystem (Intel RDT).

The group is a CTRL_MON directory at the resctrl root: `closID` names it, else the
container id; closID "/" is the root itself (the default CLOS). Before any container
process exists create validates the config against the host, makes (or joins) the
group and writes its schemata lines: l3CacheSchema, then memBwSchema, then the
`schemata` list, as one write. The pid create places in the cgroup (the intermediate,
or init itself) then goes into the group's `tasks` (and, with enableMonitoring, into
mon_groups/<container id>/tasks); every process it forks inherits both. Delete removes
the MON group, and the CTRL_MON group only when ocirt made it for a container without
closID. `update --l3-cache-schema/--mem-bw-schema` rewrites the lines.

Only imported for a container that has linux.intelRdt (or for those update flags).
The filesystem calls go through `HostFS`, so tests can drive the same code against a
fake resctrl tree that behaves like the kernel's.
"""
import errno
import os

from .errors import ConfigError, OcirtError
from .syscalls import unescape_mountinfo

F = "linux.intelRdt"
# names at the resctrl root that are not CLOS groups
_RESERVED = frozenset(("info", "mon_groups", "mon_data"))


def resctrl_mount_info(mountinfo="/proc/self/mountinfo"):
    """(mount point, super options) of the first resctrl mount, or None."""
    try:
        with open(mountinfo) as f:
            for line in f:
                right = line.partition(" - ")[2].split()
                if right and right[0] == "resctrl":
                    return unescape_mountinfo(line.split()[4]), (right[2] if len(right) > 2 else "")
    except OSError:
        pass
    return None


def resctrl_mount(mountinfo="/proc/self/mountinfo"):
    """Where resctrl is mounted, or None."""
    m = resctrl_mount_info(mountinfo)
    return m[0] if m else None


class HostFS:
    """The few filesystem calls the manager makes (a test swaps in a fake kernel)."""

    def isdir(self, path):
        return os.path.isdir(path)

    def mkdir(self, path):
        os.mkdir(path, 0o755)

    def rmdir(self, path):
        os.rmdir(path)

    def read(self, path):
        with open(path) as f:
            return f.read()

    def write(self, path, data):
        """One write(2): resctrl parses each write as a whole."""
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            b = data.encode()
            if os.write(fd, b) != len(b):
                raise OSError(errno.EIO, "short write")
        finally:
            os.close(fd)


def parse_line(line):
    """'L3:0=7f0;1=1f' -> ('L3', {'0': '7f0', '1': '1f'}); ValueError if malformed."""
    name, sep, rest = line.partition(":")
    name = name.strip()
    if not sep or not name or any(c.isspace() for c in name):
        raise ValueError(line)
    doms = {}
    for item in rest.split(";"):
        item = item.strip()
        if not item:
            continue
        dom, eq, val = item.partition("=")
        if not eq or not dom.strip() or not val.strip():
            raise ValueError(line)
        doms[dom.strip()] = val.strip()
    if not doms:
        raise ValueError(line)
    return name, doms


class Manager:
    """One container's resctrl group. `rdt` is the linux.intelRdt object, `cid` the
    container id, `root` the resctrl mount point (default: from mountinfo)."""

    def __init__(self, rdt, cid, root=None, fs=None, mba_mbps=None):
        self.rdt = rdt
        self.cid = cid
        self.fs = fs or HostFS()
        opts = ""
        if root is None:
            m = resctrl_mount_info()
            if m:
                root, opts = m
        self.root = root
        # memory bandwidth in MBps (mount -o mba_MBps): the kernel takes values as given
        self.mba_mbps = ("mba_MBps" in opts.split(",")) if mba_mbps is None else mba_mbps
        self.path = None      # the CTRL_MON group
        self.created = False  # ocirt made it (mkdir succeeded)
        self.mon = None       # mon_groups/<cid> in it, once made
        self._matched = False  # an existing group already has the asked schemata
        if isinstance(rdt, dict):
            self.clos = rdt.get("closID") or None
            self.l3 = rdt.get("l3CacheSchema") or None
            self.mb = rdt.get("memBwSchema") or None
            self.schemata = rdt.get("schemata") or []
            # enableCMT and enableMBM (spec 1.1 and 1.2) asked for the same MON group
            # that 1.3's enableMonitoring names
            self.monitoring = any(rdt.get(k) is True for k in
                                  ("enableMonitoring", "enableCMT", "enableMBM"))

    # --- what is asked
    def lines(self):
        """(field, line) in the order the spec says they are written."""
        out = []
        if self.l3:
            out.append((F + ".l3CacheSchema", self.l3))
        if self.mb:
            out.append((F + ".memBwSchema", self.mb))
        out += [(f"{F}.schemata[{i}]", s) for i, s in enumerate(self.schemata) if s]
        return out

    def _check_form(self):
        rdt = self.rdt
        if not isinstance(rdt, dict):
            raise ConfigError(F, "must be an object")
        for key in ("closID", "l3CacheSchema", "memBwSchema"):
            if key in rdt and not isinstance(rdt[key], str):
                raise ConfigError(f"{F}.{key}", "must be a string")
        if "schemata" in rdt and not (isinstance(rdt["schemata"], list) and
                                      all(isinstance(s, str) for s in rdt["schemata"])):
            raise ConfigError(F + ".schemata", "must be an array of strings")
        for key in ("enableMonitoring", "enableCMT", "enableMBM"):
            if key in rdt and not isinstance(rdt[key], bool):
                raise ConfigError(f"{F}.{key}", "must be a boolean")
        if self.mb and not self.mb.startswith("MB:"):
            raise ConfigError(F + ".memBwSchema", f"{self.mb!r} must start with MB:")
        for field, line in self.lines():
            if "\n" in line or "\r" in line or "\0" in line:
                raise ConfigError(field, "must be one schemata line (no newline)")
            try:
                parse_line(line)
            except ValueError:
                raise ConfigError(field, f"{line!r} is not a schemata line "
                                  "(<resource>:<id>=<value>;<id>=<value>...)") from None
        if self.clos is not None:
            c = self.clos
            if c != "/" and (c in (".", "..") or "/" in c or "\0" in c or c in _RESERVED):
                raise ConfigError(F + ".closID", f"invalid closID {c!r}: a resctrl group "
                                  "name (no '/', not '.', '..', info, mon_groups, "
                                  "mon_data), or '/' for the default group")
        elif self.cid in _RESERVED:
            raise ConfigError(F + ".closID", f"the container id {self.cid!r} cannot name a "
                              "resctrl group: set closID")

    # --- create
    def validate(self):
        """Everything that can be checked before anything is made: the config's form,
        resctrl on this host, the resources asked, the group asked for."""
        self._check_form()
        if self.root is None:
            raise ConfigError(F, "Intel RDT is not supported or enabled on this host "
                              "(no resctrl filesystem is mounted)")
        root = self.root
        self.path = root if self.clos == "/" else os.path.join(root, self.clos or self.cid)
        for field, line in self.lines():
            name = parse_line(line)[0]
            if not self.fs.isdir(os.path.join(root, "info", name)):
                raise ConfigError(field, self._not_enabled(name))
        if self.monitoring and not self.fs.isdir(os.path.join(root, "mon_groups")):
            raise ConfigError(F + ".enableMonitoring", "resctrl monitoring is not "
                              "available on this host (no mon_groups in resctrl)")
        exists = self.fs.isdir(self.path)
        if self.clos is not None and not self.lines() and not exists:
            raise ConfigError(F + ".closID", f"resctrl group {self.clos!r} does not exist: "
                              "without l3CacheSchema, memBwSchema or schemata, closID must "
                              "name a group made beforehand")
        if exists and self.clos is not None and self.lines():
            self._compare()
        if exists and self.monitoring and self.fs.isdir(self._mon_path()):
            raise ConfigError(F + ".enableMonitoring", f"the MON group {self._mon_path()} "
                              "already exists (another container with this id?)")

    @staticmethod
    def _not_enabled(name):
        what = {"L3": "Intel RDT/CAT (L3 cache allocation)",
                "MB": "Intel RDT/MBA (memory bandwidth allocation)"}.get(name)
        if what:
            return f"{what} is not enabled on this host (no info/{name} in resctrl)"
        return f"resctrl resource {name} is not available on this host (no info/{name})"

    def _mon_path(self):
        return os.path.join(self.path, "mon_groups", self.cid)

    def _value(self, name, val):
        """A schemata value as the kernel reads it back: bitmasks in hex without
        leading zeros, bandwidth percentages rounded up to the granularity."""
        try:
            if name.startswith(("L2", "L3")):
                return int(val, 16)
            if name in ("MB", "SMBA"):
                v = int(val, 10)
                if name == "MB" and not self.mba_mbps:
                    try:
                        gran = int(self.fs.read(os.path.join(
                            self.root, "info", name, "bandwidth_gran")).strip())
                    except (OSError, ValueError):
                        gran = 0
                    if gran > 0:
                        v = -(-v // gran) * gran
                return v
        except ValueError:
            pass
        return val.lower()

    def _compare(self):
        """The spec: an existing closID group must already have the asked schemata
        (only the domains named are compared; a later line wins, as in the write)."""
        try:
            text = self.fs.read(os.path.join(self.path, "schemata"))
        except OSError as e:
            raise ConfigError(F + ".closID", f"cannot read {self.path}/schemata: "
                              f"{e.strerror}") from None
        have = {}
        for line in text.splitlines():
            if line.strip():
                try:
                    name, doms = parse_line(line)
                except ValueError:
                    continue
                have[name] = doms
        want = {}
        for field, line in self.lines():
            name, doms = parse_line(line)
            for dom, val in doms.items():
                want[(name, dom)] = (field, val)
        for (name, dom), (field, val) in want.items():
            cur = have.get(name, {}).get(dom)
            if cur is None or self._value(name, cur) != self._value(name, val):
                now = f"{name}:{dom}={cur}" if cur is not None else f"no {name}:{dom}"
                raise ConfigError(field, f"resctrl group {self.clos!r} exists with {now}, "
                                  f"not {name}:{dom}={val}: an existing closID group must "
                                  "already have the schemata asked")
        self._matched = True

    def apply(self):
        """Make or join the group and write its schemata; then the MON group. On
        failure what was made is removed again."""
        if self.path is None:
            self.validate()
        try:
            self._apply()
        except BaseException:
            self.remove(force=True)
            raise

    def _apply(self):
        if self.clos is not None and not self.lines():
            if not self.fs.isdir(self.path):
                raise ConfigError(F + ".closID", f"resctrl group {self.clos!r} does not "
                                  "exist")
        elif self.path != self.root:
            try:
                self.fs.mkdir(self.path)
                self.created = True
            except FileExistsError:
                if self.clos is not None and not self._matched:
                    self._compare()  # made meanwhile
            except OSError as e:
                raise self._error(f"cannot make the resctrl group {self.path}", e) from None
        elif not self._matched:
            self._compare()
        if self.lines() and not (self._matched and not self.created):
            self._write_schemata()
        if self.monitoring:
            mon = self._mon_path()
            try:
                self.fs.mkdir(mon)
            except FileExistsError:
                raise ConfigError(F + ".enableMonitoring", f"the MON group {mon} already "
                                  "exists") from None
            except OSError as e:
                raise self._error(f"cannot make the MON group {mon}", e) from None
            self.mon = mon

    def _write_schemata(self, lines=None):
        lines = [ln for _, ln in self.lines()] if lines is None else lines
        data = "".join(ln + "\n" for ln in lines)
        try:
            self.fs.write(os.path.join(self.path, "schemata"), data)
        except OSError as e:
            raise self._error(f"cannot write {data.strip()!r} to "
                              f"{self.path}/schemata", e) from None

    def add_pid(self, pid):
        """Into the group's tasks, then the MON group's (a task's MON group must be
        under its CTRL_MON group: the kernel refuses the other order)."""
        for d in (self.path, self.mon):
            if d is None:
                continue
            try:
                self.fs.write(os.path.join(d, "tasks"), str(pid))
            except OSError as e:
                raise self._error(f"cannot add pid {pid} to {d}/tasks", e) from None

    def _error(self, what, e):
        msg = f"linux.intelRdt: {what}: {e.strerror or e}"
        try:
            status = self.fs.read(os.path.join(self.root, "info", "last_cmd_status")).strip()
        except OSError:
            status = ""
        if status and status != "ok":
            msg += f" (resctrl: {status})"
        return OcirtError(msg)

    # --- delete
    def remove(self, force=False):
        """The MON group, and the CTRL_MON group if ocirt made it and closID was not
        set (a named CLOS may be shared: the spec keeps it). `force` (create's
        clean-up) also removes a closID group this create made, and never raises."""
        if self.mon is not None:
            if not (self.created and (self.clos is None or force)):
                self._rmdir(self.mon, force)
            self.mon = None
        if self.created and (self.clos is None or force):
            self._rmdir(self.path, force)
            self.created = False

    def _rmdir(self, path, quiet=False):
        try:
            self.fs.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            if quiet:
                return
            raise OcirtError(f"linux.intelRdt: cannot remove {path}: {e.strerror}") from None

    # --- update
    def update(self, l3=None, mb=None):
        """`update --l3-cache-schema/--mem-bw-schema`: all the lines are written again
        with the new value(s), as runc does."""
        for flag, v, pre in (("--l3-cache-schema", l3, None), ("--mem-bw-schema", mb, "MB:")):
            if v is None:
                continue
            bad = "\n" in v or "\0" in v or (pre and not v.startswith(pre))
            try:
                parse_line(v)
            except ValueError:
                bad = True
            if bad:
                raise OcirtError(f"{flag}: {v!r} is not a schemata line" +
                                 (f" (it must start with {pre})" if pre else ""))
        old = (self.l3, self.mb)
        self.l3 = l3 or self.l3
        self.mb = mb or self.mb
        try:
            self._write_schemata()
        except BaseException:
            self.l3, self.mb = old
            raise
        return old

    def restore(self, old):
        """Back to the lines before update() (when the cgroup part of update fails)."""
        self.l3, self.mb = old
        self._write_schemata()

    # --- state.json (x_intelrdt)
    def to_state(self):
        return {"root": self.root, "path": self.path, "closID": self.clos, "id": self.cid,
                "created": self.created, "mon": self.mon, "l3CacheSchema": self.l3,
                "memBwSchema": self.mb, "schemata": list(self.schemata),
                "mba_MBps": self.mba_mbps}

    @classmethod
    def from_state(cls, st, fs=None):
        m = cls(None, st["id"], root=st["root"], fs=fs, mba_mbps=st.get("mba_MBps", False))
        m.path, m.clos, m.created, m.mon = st["path"], st["closID"], st["created"], st["mon"]
        m.l3, m.mb, m.schemata = st["l3CacheSchema"], st["memBwSchema"], st["schemata"]
        m.monitoring = m.mon is not None
        return m


def remove_state(st, fs=None):
    """delete: undo what create made, from the container's x_intelrdt."""
    Manager.from_state(st, fs).remove()


def update_container(st, cid, l3, mb, fs=None, root=None):
    """update's refusals, in runc's order (the host first, then the container),
    before anything changes; returns the Manager to call update() on, or None."""
    if not l3 and not mb:
        return None
    fs = fs or HostFS()
    root = st["root"] if st else (root or resctrl_mount())
    for flag, v, name, words in (
            ("--l3-cache-schema", l3, "L3", "Intel RDT/CAT: l3 cache schema is not enabled"),
            ("--mem-bw-schema", mb, "MB",
             "Intel RDT/MBA: memory bandwidth schema is not enabled")):
        if v and (root is None or not fs.isdir(os.path.join(root, "info", name))):
            raise OcirtError(f"{flag}: {words} on this host" +
                             (" (no resctrl filesystem is mounted)" if root is None else
                              f" (no info/{name} in resctrl)"))
    if not st:
        raise OcirtError(f"container {cid}: updating a non-existent Intel RDT configuration "
                         "is not supported (it was created without linux.intelRdt)")
    return Manager.from_state(st, fs)


def add_exec_pid(st, pid, fs=None):
    """exec: the new process joins the container's group (and its MON group), as
    runc's exec joins the CLOS: it is forked by the runtime, not by init."""
    Manager.from_state(st, fs).add_pid(pid)
