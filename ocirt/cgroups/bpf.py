"""The cgroup v2 device filter: an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program built
from the device rules, loaded and attached with bpf(2) (through ocirt.syscalls).

The program computes devices.allows(): rules are tested last to first, the first
that matches decides; a type-a rule always matches; an allow rule matches when it
covers every requested access, a deny rule when it covers any; when nothing
matches the access is allowed (what a cgroup without a program does).
"""
import os
import struct

from .. import syscalls as sc
from ..errors import ConfigError

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

DEV_BLOCK, DEV_CHAR = 1, 2
ACC = {"m": 1, "r": 2, "w": 4}

# instruction classes/opcodes used
_LDX_W = 0x61        # BPF_LDX | BPF_MEM | BPF_W
_MOV32_X = 0xbc      # BPF_ALU | BPF_MOV | BPF_X
_AND32_K = 0x54      # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74      # BPF_ALU | BPF_RSH | BPF_K
_MOV64_K = 0xb7      # BPF_ALU64 | BPF_MOV | BPF_K
_JNE32_K = 0x56      # BPF_JMP32 | BPF_JNE | BPF_K
_JEQ32_K = 0x16      # BPF_JMP32 | BPF_JEQ | BPF_K
_EXIT = 0x95


def _insn(code, dst=0, src=0, off=0, imm=0):
    if imm >= 1 << 31:
        imm -= 1 << 32
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def program(rules):
    """The program's bytes for an ordered rule list (devices.Rule)."""
    # Rules before the last type-a rule can never decide anything.
    start = 0
    for i, r in enumerate(rules):
        if r.type == "a":
            start = i
    live = rules[start:]
    out = [
        _insn(_LDX_W, 2, 1, 0),     # r2 = ctx->access_type
        _insn(_MOV32_X, 3, 2),      # r3 = r2
        _insn(_AND32_K, 3, imm=0xffff),  # r3 = device type
        _insn(_RSH32_K, 2, imm=16),      # r2 = requested access bits
        _insn(_LDX_W, 4, 1, 4),     # r4 = major
        _insn(_LDX_W, 5, 1, 8),     # r5 = minor
    ]
    for r in reversed(live):
        block = []  # (code, dst, src, 'next' or off, imm)
        if r.type != "a":
            block.append((_JNE32_K, 3, 0, "next", DEV_CHAR if r.type == "c" else DEV_BLOCK))
            if r.major is not None:
                block.append((_JNE32_K, 4, 0, "next", r.major))
            if r.minor is not None:
                block.append((_JNE32_K, 5, 0, "next", r.minor))
            mask = sum(ACC[c] for c in r.access)
            block.append((_MOV32_X, 6, 2, 0, 0))
            if r.allow:  # every requested bit must be in the rule
                block.append((_AND32_K, 6, 0, 0, (~mask) & 0xffffffff))
                block.append((_JNE32_K, 6, 0, "next", 0))
            else:        # any requested bit in the rule
                block.append((_AND32_K, 6, 0, 0, mask))
                block.append((_JEQ32_K, 6, 0, "next", 0))
        block.append((_MOV64_K, 0, 0, 0, 1 if r.allow else 0))
        block.append((_EXIT, 0, 0, 0, 0))
        n = len(block)
        for i, (code, dst, src, off, imm) in enumerate(block):
            if off == "next":
                off = n - i - 1
            out.append(_insn(code, dst, src, off, imm))
    if not live or live[0].type != "a":  # else the type-a rule always returned
        out.append(_insn(_MOV64_K, 0, imm=1))
        out.append(_insn(_EXIT))
    return b"".join(out)


def load(prog, field):
    nins = len(prog) // 8
    lic = b"Apache-2.0\0"
    log = bytearray(65536)
    attr = bytearray(128)
    struct.pack_into("<II", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, nins)
    struct.pack_into("<II", attr, 24, 1, len(log))          # log_level, log_size
    struct.pack_into("<16s", attr, 48, b"ocirt_devices")    # prog_name
    struct.pack_into("<I", attr, 68, BPF_CGROUP_DEVICE)     # expected_attach_type
    try:
        return sc.bpf(BPF_PROG_LOAD, attr, {8: prog, 16: lic, 32: log})
    except OSError as e:
        msg = log.split(b"\0", 1)[0].decode(errors="replace").strip().splitlines()
        msg = [m for m in msg if not m.startswith(("func#", "processed "))]
        detail = f" (verifier: {msg[0]})" if msg else ""
        raise ConfigError(field, f"cgroup v2 device filter: the kernel refuses the eBPF "
                          f"program: {os.strerror(e.errno)}{detail}") from None


def query(cgfd):
    """Ids of the device programs attached to a cgroup."""
    ids = bytearray(4 * 64)
    attr = bytearray(64)
    struct.pack_into("<II", attr, 0, cgfd, BPF_CGROUP_DEVICE)
    struct.pack_into("<I", attr, 24, 64)
    sc.bpf(BPF_PROG_QUERY, attr, {16: ids})
    n = struct.unpack_from("<I", attr, 24)[0]
    return list(struct.unpack_from(f"<{n}I", ids))


def _prog_fd(pid):
    attr = bytearray(16)
    struct.pack_into("<I", attr, 0, pid)
    return sc.bpf(BPF_PROG_GET_FD_BY_ID, attr)


def attach_device_filter(cgdir, rules, field):
    """Load the program for `rules`, attach it to cgdir, and detach the ones that
    were there before (so an update replaces the filter)."""
    prog = program(rules)
    pfd = load(prog, field)
    cgfd = os.open(cgdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            old = query(cgfd)
        except OSError:
            old = []
        attr = bytearray(32)
        struct.pack_into("<IIII", attr, 0, cgfd, pfd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
        try:
            sc.bpf(BPF_PROG_ATTACH, attr)
        except OSError as e:
            raise ConfigError(field, f"cgroup v2 device filter: cannot attach the eBPF "
                              f"program to {cgdir}: {os.strerror(e.errno)}") from None
        for pid in old:
            try:
                ofd = _prog_fd(pid)
            except OSError:
                continue
            try:
                attr = bytearray(32)
                struct.pack_into("<III", attr, 0, cgfd, ofd, BPF_CGROUP_DEVICE)
                sc.bpf(BPF_PROG_DETACH, attr)
            except OSError:
                pass
            finally:
                os.close(ofd)
    finally:
        os.close(cgfd)
        os.close(pfd)
