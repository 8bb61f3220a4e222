#!/usr/bin/env python3
"""Build the ocirt test VM's kernel + initramfs under build/vm/.

Inputs (all from Debian packages, see tests/vm/setup.sh):
  * the newest /boot/vmlinuz-<ver> that has /lib/modules/<ver>/modules.dep
    (package linux-image-amd64), or the one named by $OCIRT_VM_KVER;
  * /bin/busybox from busybox-static;
  * tests/vm/init.sh as /init, tests/vm/stage2.sh as /stage2.sh.

Outputs:
  build/vm/vmlinuz              copy of the kernel image (bzImage)
  build/vm/vmlinux              the same kernel decompressed (ELF), written only
                                when it has a PVH entry note: qemu then boots it
                                directly, skipping the ~4 s of XZ decompression
                                that the bzImage costs under TCG
  build/vm/initramfs.cpio.gz    cpio (newc) + gzip
  build/vm/stamp                hash of the inputs (guest.py rebuilds when it changes)

The cpio archive is written directly by this script (no cpio/fakeroot needed),
with every file owned by root.
"""
from __future__ import annotations

import glob
import gzip
import hashlib
import io
import lzma
import os
import struct
import zlib
import stat
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.path.join(REPO, "build", "vm")
INIT_SCRIPT = os.path.join(HERE, "init.sh")
STAGE2_SCRIPT = os.path.join(HERE, "stage2.sh")
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

# Load order from the design; dependencies found in modules.dep are loaded first.
MODULES = [
    "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
    "virtio_pci", "netfs", "fscache", "9pnet", "9pnet_virtio", "9p", "overlay",
]


class BuildError(RuntimeError):
    pass


def _vercmp_key(ver: str):
    out = []
    for part in ver.replace("-", ".").split("."):
        out.append((0, int(part), "") if part.isdigit() else (1, 0, part))
    return out


def find_kernel() -> tuple[str, str] | None:
    """Return (version, vmlinuz path) of the kernel to boot, or None."""
    want = os.environ.get("OCIRT_VM_KVER")
    found = []
    for path in glob.glob("/boot/vmlinuz-*"):
        ver = os.path.basename(path)[len("vmlinuz-"):]
        if want and ver != want:
            continue
        if os.path.exists(f"/lib/modules/{ver}/modules.dep"):
            found.append((ver, path))
    if not found:
        return None
    found.sort(key=lambda vp: _vercmp_key(vp[0]))
    return found[-1]


def find_busybox() -> str | None:
    for p in BUSYBOX_CANDIDATES:
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def _norm(name: str) -> str:
    return name.replace("-", "_")


def _modname(relpath: str) -> str:
    base = os.path.basename(relpath)
    for suf in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(suf):
            return _norm(base[: -len(suf)])
    return _norm(base)


def resolve_modules(kver: str) -> list[tuple[str, str]]:
    """[(module name, absolute .ko* path)] in load order; absent ones skipped."""
    moddir = f"/lib/modules/{kver}"
    deps: dict[str, list[str]] = {}
    paths: dict[str, str] = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            if ":" not in line:
                continue
            mod, rest = line.split(":", 1)
            name = _modname(mod)
            paths[name] = os.path.join(moddir, mod.strip())
            deps[name] = [_modname(d) for d in rest.split()]
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name not in paths:
            return  # built in, or not built at all: nothing to load
        seen.add(name)
        # modules.dep lists deps so that loading them last-to-first works
        for d in reversed(deps.get(name, [])):
            visit(d)
        order.append(name)

    for m in MODULES:
        visit(_norm(m))
    return [(m, paths[m]) for m in order]


def read_module(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        try:
            return subprocess.run(["zstd", "-dcq"], input=data, check=True,
                                  stdout=subprocess.PIPE).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            raise BuildError(f"cannot decompress {path} (install zstd): {e}")
    return data


XEN_ELFNOTE_PHYS32_ENTRY = 18


def has_pvh_note(elf: bytes) -> bool:
    """True if an ELF64 image has the Xen PHYS32_ENTRY (PVH) note qemu boots by."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        return False
    e_phoff, = struct.unpack_from("<Q", elf, 0x20)
    e_phentsize, e_phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(e_phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", elf, e_phoff + i * e_phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        off, end = p_offset, p_offset + p_filesz
        while off + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, off)
            name = elf[off + 12: off + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY:
                return True
            off += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return False


def extract_vmlinux(bzimage: bytes) -> bytes | None:
    """The ELF kernel inside an x86 bzImage, or None if it can't be had."""
    try:
        if bzimage[0x202:0x206] != b"HdrS":
            return None
        setup_sects = bzimage[0x1F1] or 4
        payload_offset, payload_length = struct.unpack_from("<II", bzimage, 0x248)
        start = (setup_sects + 1) * 512 + payload_offset
        payload = bzimage[start:start + payload_length]
        if payload.startswith(b"\xfd7zXZ\x00"):
            out = lzma.LZMADecompressor().decompress(payload)
        elif payload.startswith(b"\x1f\x8b"):
            out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload)
        elif payload.startswith(b"\x28\xb5\x2f\xfd"):
            out = subprocess.run(["zstd", "-dcq"], input=payload[:-4], check=True,
                                 stdout=subprocess.PIPE).stdout
        elif payload.startswith(b"\x7fELF"):
            out = payload
        else:
            return None
    except (lzma.LZMAError, zlib.error, OSError, subprocess.CalledProcessError,
            struct.error, IndexError):
        return None
    return out if out.startswith(b"\x7fELF") else None


class Cpio:
    """Minimal writer for the 'newc' cpio format the kernel unpacks."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1
        self.dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"",
               rdev: tuple[int, int] = (0, 0), nlink: int = 1) -> None:
        nameb = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0,
                  rdev[0], rdev[1], len(nameb), 0]
        self.ino += 1
        hdr = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.buf.write(hdr + nameb)
        self.buf.write(b"\0" * (-(len(hdr) + len(nameb)) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))

    def dir(self, name: str, perm: int = 0o755) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                self.dirs.add(d)
                self._entry(d, stat.S_IFDIR | perm, nlink=2)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        parent = os.path.dirname(name.strip("/"))
        if parent:
            self.dir(parent)
        self._entry(name.strip("/"), stat.S_IFREG | perm, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name.strip("/"), stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        self._entry(name.strip("/"), stat.S_IFCHR | perm, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, nlink=1)
        data = self.buf.getvalue()
        return data + b"\0" * (-len(data) % 512)


def input_stamp(kver: str, kernel: str, busybox: str) -> str:
    h = hashlib.sha256()
    for p in (kernel, busybox):
        st = os.stat(p)
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    for p in (INIT_SCRIPT, STAGE2_SCRIPT, os.path.abspath(__file__)):
        with open(p, "rb") as f:
            h.update(f.read())
    h.update(kver.encode())
    return h.hexdigest()


def current_stamp() -> str | None:
    k = find_kernel()
    bb = find_busybox()
    if not k or not bb:
        return None
    return input_stamp(k[0], k[1], bb)


def is_up_to_date() -> bool:
    stamp = current_stamp()
    try:
        with open(os.path.join(BUILD_DIR, "stamp")) as f:
            old = f.read().strip()
    except OSError:
        return False
    return (stamp is not None and old == stamp
            and os.path.exists(os.path.join(BUILD_DIR, "vmlinuz"))
            and os.path.exists(os.path.join(BUILD_DIR, "initramfs.cpio.gz")))


def _atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def build(verbose: bool = True) -> str:
    """Build build/vm/{vmlinuz,initramfs.cpio.gz,stamp}; return BUILD_DIR."""
    k = find_kernel()
    if not k:
        raise BuildError("no /boot/vmlinuz-<ver> with /lib/modules/<ver>/modules.dep "
                         "(apt-get install linux-image-amd64)")
    kver, kernel = k
    busybox = find_busybox()
    if not busybox:
        raise BuildError("busybox not found (apt-get install busybox-static)")
    # A dynamically linked busybox would not run in the initramfs.
    with open(busybox, "rb") as f:
        elf = f.read()
    if b"ld-linux" in elf[:4096] or b"/lib64/ld-" in elf[:4096]:
        raise BuildError(f"{busybox} is dynamically linked (apt-get install busybox-static)")

    cp = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys",
              "lower", "rw", "newroot", "xfer", "modules", "tmp", "run"):
        cp.dir(d)
    cp.chardev("dev/console", 5, 1)
    cp.chardev("dev/null", 1, 3, 0o666)
    cp.file("bin/busybox", elf, 0o755)
    cp.symlink("bin/sh", "busybox")
    with open(INIT_SCRIPT, "rb") as f:
        cp.file("init", f.read(), 0o755)
    with open(STAGE2_SCRIPT, "rb") as f:
        cp.file("stage2.sh", f.read(), 0o755)
    mods = resolve_modules(kver)
    for name, path in mods:
        cp.file(f"modules/{name}.ko", read_module(path))
    cp.file("modules/order", "".join(f"{n}\n" for n, _ in mods).encode())
    image = gzip.compress(cp.finish(), compresslevel=6, mtime=0)

    os.makedirs(BUILD_DIR, exist_ok=True)
    with open(kernel, "rb") as f:
        bzimage = f.read()
    ksrc = hashlib.sha256(bzimage).hexdigest()
    vmlinux_path = os.path.join(BUILD_DIR, "vmlinux")
    src_path = os.path.join(BUILD_DIR, "vmlinux.src")
    try:
        with open(src_path) as f:
            pvh = f.read().strip() == ksrc and os.path.exists(vmlinux_path)
    except OSError:
        pvh = False
    if not pvh:  # (re)extract only when the kernel changed
        vmlinux = extract_vmlinux(bzimage)
        pvh = vmlinux is not None and has_pvh_note(vmlinux)
        if pvh:
            _atomic_write(vmlinux_path, vmlinux)
            _atomic_write(src_path, (ksrc + "\n").encode())
        else:
            for p in (vmlinux_path, src_path):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
    _atomic_write(os.path.join(BUILD_DIR, "vmlinuz"), bzimage)
    _atomic_write(os.path.join(BUILD_DIR, "initramfs.cpio.gz"), image)
    _atomic_write(os.path.join(BUILD_DIR, "kernel-version"), (kver + "\n").encode())
    _atomic_write(os.path.join(BUILD_DIR, "stamp"),
                  (input_stamp(kver, kernel, busybox) + "\n").encode())
    if verbose:
        print(f"ocirt-vm: kernel {kver} ({'PVH vmlinux' if pvh else 'bzImage'}), modules: {' '.join(n for n, _ in mods) or '(none)'}")
        print(f"ocirt-vm: wrote {BUILD_DIR}/vmlinuz and initramfs.cpio.gz "
              f"({len(image) // 1024} KiB)")
    return BUILD_DIR


def main(argv: list[str]) -> int:
    if "--if-needed" in argv and is_up_to_date():
        print(f"ocirt-vm: {BUILD_DIR} is up to date")
        return 0
    try:
        build()
    except BuildError as e:
        print(f"ocirt-vm: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
