"""Container: one container, the object every verb acts on -- the CLI (ocirt/cli/*)
and the library (ocirt.api) alike. It owns its record (ocirt/state.py), derives its
status (ocirt/status.py) and checks each verb against the allowed transitions in one
place; the work of each verb is in ocirt/lifecycle/<verb>.py.

    c = Container.load(opts, "job1", lock=True)
    c.start()
"""
from . import state as _state, status as S
from .state import default_root
from .lazy import (lifecycle_delete, lifecycle_kill, lifecycle_pause, lifecycle_query,
                   lifecycle_start, lifecycle_update)


# --- Options: what the caller decided for one call, built once (by ocirt.main from
# the global flags, by ocirt.api from keyword arguments) and passed down. Behaviour is
# never read from os.environ or a module global.
class Options:
    __slots__ = ("root", "systemd_cgroup", "rootless", "log", "log_format", "debug",
                 "criu")

    def __init__(self, root=None, systemd_cgroup=False, rootless="auto", log=None,
                 log_format="text", debug=False, criu=None):
        self.root = root  # None: rules.DEFAULT_ROOT (or $XDG_RUNTIME_DIR/ocirt)
        self.systemd_cgroup = systemd_cgroup
        self.rootless = rootless  # "auto", "true" or "false"
        self.log, self.log_format, self.debug, self.criu = log, log_format, debug, criu

    def state_root(self):
        if self.root:
            return self.root
        return default_root()

    def rootless_wanted(self):
        """--rootless true/false, or None for auto."""
        return {"true": True, "false": False}.get(self.rootless)


def options_of(root=None):
    """Options for a library call that names only a root (ocirt.api)."""
    return root if isinstance(root, Options) else Options(root=root)


class Container:
    __slots__ = ("opts", "rec")

    def __init__(self, opts, rec):
        self.opts, self.rec = opts, rec

    # --- finding one
    @classmethod
    def handle(cls, opts, cid):
        """No I/O: for create (the directory does not exist yet) and delete --force."""
        opts = options_of(opts)
        return cls(opts, _state.Record(opts.state_root(), cid))

    @classmethod
    def load(cls, opts, cid, lock=False):
        c = cls.handle(opts, cid)
        if lock:
            c.rec.lock()
        try:
            c.rec.load()
        except BaseException:
            c.rec.unlock()
            raise
        return c

    @classmethod
    def all(cls, opts):
        """Every container's OCI state, in id order (one being created or deleted
        meanwhile is left out)."""
        root = options_of(opts).state_root()
        out = []
        for cid in _state.list_ids(root):  # names of directories: ids already
            try:
                out.append(_state.oci_state_at(f"{root}/{cid}", cid))
            except Exception:  # noqa: BLE001 - a container being created or deleted
                continue
        return out

    def unlock(self):
        self.rec.unlock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.rec.unlock()

    # --- what it is
    @property
    def id(self):
        return self.rec.id

    @property
    def state(self):
        return self.rec.state

    @property
    def dir(self):
        return self.rec.dir

    def status(self):
        return self.rec.status()

    def require(self, verb, force=False):
        """The status, if `verb` may act in it; else WrongState in runc's words."""
        return S.require(verb, self.id, self.status(), force)

    def oci_state(self):
        return self.rec.oci_state()

    # --- the verbs (each in ocirt/lifecycle/<verb>.py)
    def start(self):
        return lifecycle_start.start(self)

    def signal(self, sig, all_processes=False):
        return lifecycle_kill.kill(self, sig, all_processes)

    def pause(self):
        return lifecycle_pause.pause(self)

    def resume(self):
        return lifecycle_pause.resume(self)

    def update(self, resources, l3_cache_schema=None, mem_bw_schema=None):
        return lifecycle_update.update(self, resources, l3_cache_schema, mem_bw_schema)

    def processes(self):
        """Host pids of its processes (none once stopped)."""
        return lifecycle_query.processes(self)

    def delete(self, force=False):
        return lifecycle_delete.delete(self, force)

    def destroy(self):
        """Release everything a stopped container holds (cgroup, RDT, mounts, hooks,
        the record)."""
        return lifecycle_delete.destroy(self)
