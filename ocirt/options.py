"""Options: what the caller decided for one call, built once (by ocirt.main from the
global flags, by ocirt.api from keyword arguments) and passed down. Behaviour is never
read from os.environ or a module global."""


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
        from .state import default_root
        return default_root()

    def rootless_wanted(self):
        """--rootless true/false, or None for auto."""
        return {"true": True, "false": False}.get(self.rootless)


def of(root=None):
    """Options for a library call that names only a root (ocirt.api)."""
    return root if isinstance(root, Options) else Options(root=root)
