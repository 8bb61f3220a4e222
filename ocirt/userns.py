"""linux.uidMappings / gidMappings for a new user namespace."""
import os
import shutil
import subprocess

from .errors import ConfigError


def _format(maps):
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)


def write_maps(cfg, pid):
    """Write the maps of `pid`'s new user namespace. Returns True when setgroups was
    denied (needed for an unprivileged single self-mapping)."""
    linux = cfg.get("linux") or {}
    uids = linux.get("uidMappings") or []
    gids = linux.get("gidMappings") or []
    if not uids or not gids:
        raise ConfigError("linux.uidMappings", "a new user namespace needs uidMappings and "
                          "gidMappings")
    denied = False
    if os.geteuid() != 0:
        self_only = (len(gids) == 1 and gids[0]["hostID"] == os.getegid()
                     and gids[0]["size"] == 1)
        if self_only:
            _write(f"/proc/{pid}/setgroups", "deny", "linux.gidMappings")
            denied = True
        if len(uids) > 1 or uids[0]["hostID"] != os.geteuid() or uids[0]["size"] != 1:
            _helper("newuidmap", pid, uids, "linux.uidMappings")
        else:
            _write(f"/proc/{pid}/uid_map", _format(uids), "linux.uidMappings")
        if not self_only:
            _helper("newgidmap", pid, gids, "linux.gidMappings")
        else:
            _write(f"/proc/{pid}/gid_map", _format(gids), "linux.gidMappings")
        return denied
    _write(f"/proc/{pid}/uid_map", _format(uids), "linux.uidMappings")
    _write(f"/proc/{pid}/gid_map", _format(gids), "linux.gidMappings")
    return denied


def _write(path, data, where):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise ConfigError(where, f"cannot write {path}: {e.strerror}") from None


def _helper(tool, pid, maps, where):
    exe = shutil.which(tool)
    if exe is None:
        raise ConfigError(where, f"mapping more than your own id needs {tool} (Debian: uidmap)")
    args = [exe, str(pid)]
    for m in maps:
        args += [str(m["containerID"]), str(m["hostID"]), str(m["size"])]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise ConfigError(where, f"{tool} failed: {r.stderr.strip() or r.returncode} "
                          "(check /etc/subuid and /etc/subgid)")
