"""The floor of any Python runtime, a bench reference point: start the interpreter
(-I -S, like ocirt's entry script), load ocirt's shim, unshare the namespaces the
bench config asks for, fork, chroot into the rootfs, exec /bin/true and wait. No
config, no cgroup, no mount, no state: what is left of a `run` when all of that
takes no time.

    python -I -S bench/pyfloor.py ROOTFS REPO SITE_PACKAGES
"""
import sys

rootfs, repo, site = sys.argv[1:4]
sys.path[:0] = [repo, site]
import os  # noqa: E402

from ocirt._shim._lib import lib  # noqa: E402

NEW = 0x20000000 | 0x40000000 | 0x00020000 | 0x08000000 | 0x04000000 | 0x02000000
if lib.ocirt_unshare(NEW) < 0:  # pid (for the child), net, mount, ipc, uts, cgroup
    sys.exit("pyfloor: unshare failed")
pid = os.fork()
if pid == 0:
    os.chroot(rootfs)
    os.chdir("/")
    os.execv("/bin/true", ["/bin/true"])
_, status = os.waitpid(pid, 0)
os._exit(os.waitstatus_to_exitcode(status))
