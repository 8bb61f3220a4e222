"""/dev inside the container: default devices, linux.devices, links, pts and shm."""
import os
import stat

from .. import syscalls as sc
from ..errors import ConfigError
from .mounts import make_in_root, open_in_root
from .mounts import is_bind

# The spec's default devices: path -> (type, major, minor)
DEFAULT_DEVICES = {
    "/dev/null": ("c", 1, 3), "/dev/zero": ("c", 1, 5), "/dev/full": ("c", 1, 7),
    "/dev/random": ("c", 1, 8), "/dev/urandom": ("c", 1, 9), "/dev/tty": ("c", 5, 0),
}
LINKS = {
    "/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
    "/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
}
_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def needs_dev_setup(cfg):
    """runc's rule: /dev is populated unless the config bind-mounts a whole /dev."""
    for m in cfg.get("mounts") or []:
        if m.get("destination", "").rstrip("/") == "/dev" and is_bind(m):
            return False
    return True


def create_devices(rootfd, cfg, bind_from_host):
    """Make the default devices and linux.devices; with `bind_from_host` (a user
    namespace, where mknod is refused) bind-mount the host's nodes instead."""
    devices = [(p, t, ma, mi, 0o666, 0, 0, None) for p, (t, ma, mi) in DEFAULT_DEVICES.items()]
    for i, d in enumerate((cfg.get("linux") or {}).get("devices") or []):
        devices.append((d["path"], d["type"], d.get("major", 0), d.get("minor", 0),
                        d.get("fileMode", 0o666), d.get("uid", 0), d.get("gid", 0), i))
    seen = {}
    for dev in devices:
        seen[dev[0]] = dev  # linux.devices override defaults with the same path
    for path, typ, major, minor, mode, uid, gid, idx in seen.values():
        where = f"linux.devices[{idx}]" if idx is not None else path
        try:
            _make_device(rootfd, path, typ, major, minor, mode, uid, gid, bind_from_host)
        except OSError as e:
            raise ConfigError(where, f"cannot create device {path}: {e.strerror}") from None


def _make_device(rootfd, path, typ, major, minor, mode, uid, gid, bind_from_host):
    parent, name = os.path.split(path)
    pfd = make_in_root(rootfd, parent)
    try:
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None:
            # config-linux.md: an existing file that is not the requested device is an error
            if ((st.st_mode & 0o170000) != _TYPES[typ] or
                    (typ != "p" and st.st_rdev != os.makedev(major, minor))):
                raise OSError(17, f"{path} exists and is not the requested device")
            if bind_from_host:
                return
            os.unlink(name, dir_fd=pfd)
        if bind_from_host:
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=pfd))
            fd = open_in_root(rootfd, path)
            try:
                sc.mount(path, f"/proc/self/fd/{fd}", None, sc.MS_BIND, None)
            finally:
                os.close(fd)
            return
        os.mknod(name, (mode & 0o7777) | _TYPES[typ], os.makedev(major, minor), dir_fd=pfd)
        fd = open_in_root(rootfd, path)
        try:
            os.chown(f"/proc/self/fd/{fd}", uid, gid)
            os.chmod(f"/proc/self/fd/{fd}", mode & 0o7777)
        finally:
            os.close(fd)
    finally:
        os.close(pfd)


def create_links(rootfd):
    for path, target in LINKS.items():
        parent, name = os.path.split(path)
        pfd = make_in_root(rootfd, parent)
        try:
            os.symlink(target, name, dir_fd=pfd)
        except FileExistsError:
            pass
        finally:
            os.close(pfd)


def setup_ptmx(rootfd):
    """/dev/ptmx -> pts/ptmx, so each container uses its own devpts instance."""
    pfd = make_in_root(rootfd, "/dev")
    try:
        try:
            os.unlink("ptmx", dir_fd=pfd)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", "ptmx", dir_fd=pfd)
    finally:
        os.close(pfd)
