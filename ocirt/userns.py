"""linux.uidMappings / gidMappings for a new user namespace.

The create process writes the maps of the intermediate's new namespace:
* as root (in the initial namespace, or in a namespace it owns, as under rootless
  Podman): /proc/<pid>/uid_map and gid_map directly;
* unprivileged: directly only for the single mapping of its own id (the kernel
  then requires `deny` in /proc/<pid>/setgroups before gid_map is written);
  anything more goes through the setuid helpers newuidmap / newgidmap (Debian's
  uidmap package), which check the ranges in /etc/subuid and /etc/subgid.
The ranges were checked before the fork (rootless.check_mappings), so a failure
here is rare and its message carries the helper's own words.
"""
import os

from . import syscalls
from .errors import ConfigError
from .rootless import self_mapping
from .lazy import shutil, subprocess


def _format(maps):
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)


def write_maps(cfg, pid):
    """Write the maps of `pid`'s new user namespace. Returns True when setgroups was
    denied (needed for an unprivileged single self-mapping of the gid)."""
    linux = cfg.get("linux") or {}
    uids = linux.get("uidMappings") or []
    gids = linux.get("gidMappings") or []
    if not uids or not gids:
        raise ConfigError("linux.uidMappings", "a new user namespace needs uidMappings and "
                          "gidMappings")
    if os.geteuid() == 0:
        syscalls.write_control(f"/proc/{pid}/uid_map", _format(uids), "linux.uidMappings")
        syscalls.write_control(f"/proc/{pid}/gid_map", _format(gids), "linux.gidMappings")
        return False
    gid_self = self_mapping(gids, os.getegid())
    if gid_self:
        syscalls.write_control(f"/proc/{pid}/setgroups", "deny", "linux.gidMappings")
    if self_mapping(uids, os.geteuid()):
        syscalls.write_control(f"/proc/{pid}/uid_map", _format(uids), "linux.uidMappings")
    else:
        _helper("newuidmap", pid, uids, "linux.uidMappings")
    if gid_self:
        syscalls.write_control(f"/proc/{pid}/gid_map", _format(gids), "linux.gidMappings")
    else:
        _helper("newgidmap", pid, gids, "linux.gidMappings")
    return gid_self




def _helper(tool, pid, maps, where):
    exe = shutil.which(tool)
    if exe is None:
        raise ConfigError(where, f"mapping more than your own id needs {tool} "
                          "(Debian/Ubuntu: apt install uidmap)")
    args = [exe, str(pid)]
    for m in maps:
        args += [str(m["containerID"]), str(m["hostID"]), str(m["size"])]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        msg = " ".join(r.stderr.split()) or f"exit status {r.returncode}"
        raise ConfigError(where, f"{tool} failed: {msg} (check /etc/subuid and /etc/subgid)")
