"""The one busybox-static test rootfs: the conformance tests, the engine tests (as an
image tarball), bench/ and `make demo` all build it here.

    python3 tests/busybox_rootfs.py DEST        # a directory (what `make demo` runs)

Contents: /bin/busybox and a relative symlink per applet, /etc/passwd and /etc/group
(root, a uid 1000 `user` with /home/user, nobody), /etc/hostname, /tmp (1777), and
empty /proc /sys /dev /root /run /var /mnt.
"""
import hashlib
import io
import os
import subprocess
import sys
import tarfile

BUSYBOX = os.environ.get("OCIRT_TEST_BUSYBOX", "/bin/busybox")
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "user:x:1000:1000:user:/home/user:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n"
DIRS = {"bin": 0o755, "etc": 0o755, "tmp": 0o1777, "proc": 0o755, "sys": 0o755,
        "dev": 0o755, "root": 0o755, "home": 0o755, "home/user": 0o755, "run": 0o755,
        "var": 0o755, "mnt": 0o755}
OWNED = {"home/user": (1000, 1000)}
FILES = {"etc/passwd": PASSWD, "etc/group": GROUP, "etc/hostname": "rootfs\n"}

_applets = None


def applets():
    global _applets
    if _applets is None:
        out = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout
        _applets = sorted({a for a in out.split() if a and "/" not in a and a != "busybox"})
    return _applets


def build(dest):
    """The rootfs as a directory at `dest` (created); returns `dest`."""
    for d, mode in DIRS.items():
        p = os.path.join(dest, d)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
    for d, (uid, gid) in OWNED.items():
        os.chown(os.path.join(dest, d), uid, gid)
    bb = os.path.join(dest, "bin", "busybox")
    with open(BUSYBOX, "rb") as src, open(bb, "wb") as dst:
        dst.write(src.read())
    os.chmod(bb, 0o755)
    for a in applets():
        os.symlink("busybox", os.path.join(dest, "bin", a))
    for name, text in FILES.items():
        with open(os.path.join(dest, name), "w") as f:
            f.write(text)
    return dest


def tar(dest):
    """The same rootfs as an uncompressed tar at `dest`; returns its sha256."""
    def add(tf, name, kind, data=b"", mode=0o755, link="", owner=(0, 0)):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.mtime, ti.linkname = kind, mode, 1700000000, link
        ti.uid, ti.gid = owner
        if kind == tarfile.REGTYPE:
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        else:
            tf.addfile(ti)
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for d, mode in DIRS.items():
            add(tf, d, tarfile.DIRTYPE, mode=mode, owner=OWNED.get(d, (0, 0)))
        add(tf, "bin/busybox", tarfile.REGTYPE, bb)
        for a in applets():
            add(tf, f"bin/{a}", tarfile.SYMTYPE, link="busybox", mode=0o777)
        for name, text in FILES.items():
            add(tf, name, tarfile.REGTYPE, text.encode(), 0o644)
    data = buf.getvalue()
    with open(dest, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: busybox_rootfs.py DEST")
    build(sys.argv[1])
