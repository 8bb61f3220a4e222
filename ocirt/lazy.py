"""Every module ocirt loads only when a call needs it, named once, here.

A module imports at module level what it always needs. A module that only some
verbs, some configs or some hosts need is bound at module level too, but from here:
`from .lazy import terminal` binds a stand-in that imports ocirt.terminal the first
time one of its attributes is used. So each dependency is written at the top of the
module that has it, nothing loads before it is used (a `run` of runc spec's config
loads 67 modules; tests/conformance/test_hot_path.py), and this table is the only
place where laziness lives: tests/unit/test_lazy.py holds the rest of ocirt to no
import inside a function.

Two rules come with a stand-in. A process that will lose the view of ocirt's files
(init after pivot_root, a child in another mount namespace) loads what it will need
first: `need(init, terminal)`. And a stand-in is shared: `need` in one module loads
the module for all of them, forked children included.

Left as functions elsewhere, for what a stand-in can't do: seccomp._pyseccomp
(pyseccomp without ctypes.util's ldconfig run), config._sha256 (a fallback module),
jsonfast.loads (json.decoder only on an error path, before a second scan), and the
build-time scripts (_launcher.write, _shim/build.py) that run outside the package.
"""
import sys


class Module:
    """A module imported on first attribute use."""

    __slots__ = ("_name", "_mod")

    def __init__(self, name):
        self._name = name
        self._mod = None

    def __getattr__(self, attr):
        mod = self._mod
        if mod is None:
            mod = self._mod = _load(self._name)
        return getattr(mod, attr)

    def __repr__(self):
        return f"<lazy {self._name}{'' if self._mod is None else ' (loaded)'}>"


def _load(name):
    mod = sys.modules.get(name)
    if mod is None:
        __import__(name)
        mod = sys.modules[name]
    return mod


def need(*mods):
    """Load these now (before a fork or a pivot_root that would hide their files)."""
    for m in mods:
        if m._mod is None:
            m._mod = _load(m._name)


# The verbs: each command loads its own (ocirt.container's methods, ocirt.cli).
lifecycle_create = Module("ocirt.lifecycle.create")
lifecycle_delete = Module("ocirt.lifecycle.delete")
lifecycle_exec = Module("ocirt.lifecycle.exec")
lifecycle_kill = Module("ocirt.lifecycle.kill")
lifecycle_measured = Module("ocirt.lifecycle.measured")
lifecycle_pause = Module("ocirt.lifecycle.pause")
lifecycle_query = Module("ocirt.lifecycle.query")
lifecycle_run = Module("ocirt.lifecycle.run")
lifecycle_start = Module("ocirt.lifecycle.start")
lifecycle_update = Module("ocirt.lifecycle.update")
process_exec = Module("ocirt.process.exec")
init = Module("ocirt.process.init")

# What only some configs ask for.
terminal = Module("ocirt.terminal")          # process.terminal
hooks = Module("ocirt.hooks")                # hooks
seccomp = Module("ocirt.seccomp")            # linux.seccomp
mempolicy = Module("ocirt.mempolicy")        # linux.memoryPolicy
netdev = Module("ocirt.netdev")              # linux.netDevices
intelrdt = Module("ocirt.intelrdt")          # linux.intelRdt
rootless_cgroup = Module("ocirt.rootless_cgroup")  # an unprivileged caller
userns = Module("ocirt.userns")              # id maps through newuidmap/newgidmap
idmap = Module("ocirt.rootfs.idmap")         # idmapped mounts; binds of a new user namespace
usage = Module("ocirt.usage")                # --usage-file, the judge's verdict
schema = Module("ocirt.schema")              # a config.json whose verdict is not cached
fields = Module("ocirt.fields")              # the unknown-field warnings of that check

# What only some hosts need: the cgroup drivers and their parts.
cgroup_v1 = Module("ocirt.cgroups.v1")
cgroup_v2 = Module("ocirt.cgroups.v2")
systemd = Module("ocirt.cgroups.systemd")    # --systemd-cgroup, rootless systemd
cgroup_devices = Module("ocirt.cgroups.devices")
bpf = Module("ocirt.cgroups.bpf")            # device rules on cgroup v2
v1limits = Module("ocirt.cgroups.v1limits")
counters = Module("ocirt.cgroups.counters")  # events, usage

# ocirt's own modules that a verb loading the importer does not always need (the
# C front serves state, kill, start and delete without Python; these keep the
# Python ones of those verbs and spec/features from loading the create path).
cgroups = Module("ocirt.cgroups")
mounts = Module("ocirt.rootfs.mounts")
attrs = Module("ocirt.process.attrs")
common = Module("ocirt.process.common")
speed = Module("ocirt.process.speed")
container = Module("ocirt.container")
config = Module("ocirt.config")
state = Module("ocirt.state")
rootless = Module("ocirt.rootless")
syscalls = Module("ocirt.syscalls")
jsonfast = Module("ocirt.jsonfast")
errors = Module("ocirt.errors")
log = Module("ocirt.log")
_bundle = Module("ocirt._bundle")
shim_lib = Module("ocirt._shim._lib")        # the cffi shim, loaded by syscalls.impl()

# Heavy libraries (each costs milliseconds to import; architecture.md, "Import cost").
json = Module("json")
re = Module("re")
shutil = Module("shutil")
subprocess = Module("subprocess")
stdsocket = Module("socket")                 # the module; `_socket` is imported directly
struct = Module("struct")
traceback = Module("traceback")              # --debug
pwd = Module("pwd")
pyroute2 = Module("pyroute2")                # ~140 ms: netDevices only
netlink_exceptions = Module("pyroute2.netlink.exceptions")
