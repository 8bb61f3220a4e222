"""ocirt.schema and spec/*.json: valid documents pass, invalid ones fail at the
right path with the right message, and the verdicts agree with the reference
`jsonschema` implementation (imported here only, never by ocirt)."""

import copy
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from ocirt import fields, schema
from ocirt.errors import ConfigError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(HERE, "data")
SPEC = os.path.join(REPO, "spec")

jsonschema = pytest.importorskip("jsonschema")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


def load(name):
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        return json.load(f)


RUNC_SPEC = load("runc-spec.json")
RUNC_ROOTLESS = load("runc-spec-rootless.json")

# A config that sets every field the schema knows about.
RICH = {
    "ociVersion": "1.2.1",
    "root": {"path": "rootfs", "readonly": True},
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/data", "type": "none", "source": "/volumes/data",
         "options": ["rbind", "rw", "idmap"],
         "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
         "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]},
        {"destination": "relative/deprecated", "source": "tmpfs", "type": "tmpfs",
         "options": ["nosuid", "mode=755", "size=65536k"]},
    ],
    "process": {
        "terminal": True,
        "consoleSize": {"height": 25, "width": 80},
        "user": {"uid": 1, "gid": 1, "umask": 63, "additionalGids": [5, 6],
                 "username": "someone"},
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/root",
        "args": ["sh", "-c", "echo hi"],
        "commandLine": "sh -c 'echo hi'",
        "apparmorProfile": "acme_secure_profile",
        "selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c124,c675",
        "noNewPrivileges": True,
        "capabilities": {
            "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "inheritable": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_AUDIT_WRITE", "CAP_KILL"],
            "ambient": ["CAP_NET_BIND_SERVICE"],
        },
        "rlimits": [
            {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
            {"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": 0},
        ],
        "oomScoreAdj": 100,
        "scheduler": {"policy": "SCHED_DEADLINE", "nice": -5, "priority": 0,
                      "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM"],
                      "runtime": 10000000, "deadline": 20000000, "period": 30000000},
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
        "execCPUAffinity": {"initial": "7", "final": "0-3,7"},
    },
    "hostname": "rich",
    "domainname": "example.org",
    "hooks": {
        "prestart": [{"path": "/usr/bin/fix-mounts", "args": ["fix-mounts", "arg1"],
                      "env": ["key1=value1"]}],
        "createRuntime": [{"path": "/usr/bin/setup-network", "timeout": 5}],
        "createContainer": [{"path": "/usr/bin/mark-container"}],
        "startContainer": [{"path": "/usr/bin/refresh-ldcache"}],
        "poststart": [{"path": "/usr/bin/notify-start", "timeout": 5}],
        "poststop": [{"path": "/usr/sbin/cleanup.sh", "args": ["cleanup.sh", "-f"]}],
    },
    "annotations": {"com.example.key1": "value1", "org.opencontainers.image.os": "linux", "e": ""},
    "linux": {
        "namespaces": [
            {"type": "pid"}, {"type": "network", "path": "/var/run/netns/x"},
            {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "user"},
            {"type": "cgroup"}, {"type": "time"},
        ],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
        "timeOffsets": {"monotonic": {"secs": -172800, "nanosecs": 0},
                        "boottime": {"secs": 1, "nanosecs": 999999999}},
        "devices": [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
             "fileMode": 438, "uid": 0, "gid": 0},
            {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0},
            {"path": "/dev/fifo", "type": "p"},
        ],
        "cgroupsPath": "/myRuntime/myContainer",
        "resources": {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
                {"allow": True, "type": "a"},
            ],
            "memory": {"limit": 536870912, "reservation": 536870912, "swap": 536870912,
                       "kernel": -1, "kernelTCP": -1, "swappiness": 0,
                       "disableOOMKiller": False, "useHierarchy": True,
                       "checkBeforeUpdate": True},
            "cpu": {"shares": 1024, "quota": 1000000, "burst": 1000000, "period": 500000,
                    "realtimeRuntime": 950000, "realtimePeriod": 1000000,
                    "cpus": "2-3", "mems": "0-7", "idle": 0},
            "blockIO": {
                "weight": 10, "leafWeight": 10,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300},
                                 {"major": 8, "minor": 16, "weight": 500},
                                 {"major": 8, "minor": 32, "leafWeight": 300}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 300}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200},
                               {"pageSize": "64KB", "limit": 1000000}],
            "network": {"classID": 1048577,
                        "priorities": [{"name": "eth0", "priority": 500},
                                       {"name": "eth1", "priority": 1000}]},
            "pids": {"limit": 32771},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000},
                     "mlx4_0": {"hcaObjects": 1000},
                     "rxe3": {"hcaHandles": 10000}},
            "unified": {"io.max": "259:0 rbps=2097152 wiops=120\n253:0 rbps=2097152 wiops=120",
                        "hugetlb.1GB.max": "1073741824"},
        },
        "intelRdt": {"closID": "guaranteed_group", "l3CacheSchema": "L3:0=7f0;1=1f",
                     "memBwSchema": "MB:0=20;1=70", "enableCMT": True, "enableMBM": False,
                     "schemata": ["L2:0=ff"], "enableMonitoring": True},
        "netDevices": {"eth1": {"name": "net1"}},
        "memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]},
        "sysctl": {"net.ipv4.ip_forward": "1", "net.core.somaxconn": "256"},
        "seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "listenerPath": "/run/seccomp-agent.socket",
            "listenerMetadata": "MKNOD=/dev/null",
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getcwd", "chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                           "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["mknod"], "action": "SCMP_ACT_NOTIFY"},
                {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 1},
            ],
        },
        "rootfsPropagation": "slave",
        "maskedPaths": ["/proc/kcore", "/proc/keys"],
        "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
        "mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811",
        "personality": {"domain": "LINUX32", "flags": []},
    },
}

CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
CID = "4f1bb2c9d6b5e0f8a0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3"

# What dockerd (24.x, cgroup v2, systemd driver) typically hands to runc.
DOCKER = {
    "ociVersion": "1.1.0",
    "process": {
        "user": {"uid": 0, "gid": 0, "additionalGids": [0, 1, 2, 3, 4, 6, 10, 11, 20, 26, 27]},
        "args": ["/bin/sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=4f1bb2c9d6b5", "TERM=xterm"],
        "cwd": "/",
        "terminal": True,
        "consoleSize": {"height": 50, "width": 200},
        "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
        "apparmorProfile": "docker-default",
        "oomScoreAdj": 0,
    },
    "root": {"path": f"/var/lib/docker/overlay2/{CID}/merged"},
    "hostname": "4f1bb2c9d6b5",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
        {"destination": "/etc/resolv.conf", "type": "bind",
         "source": f"/var/lib/docker/containers/{CID}/resolv.conf", "options": ["rbind", "rprivate"]},
        {"destination": "/etc/hostname", "type": "bind",
         "source": f"/var/lib/docker/containers/{CID}/hostname", "options": ["rbind", "rprivate"]},
        {"destination": "/etc/hosts", "type": "bind",
         "source": f"/var/lib/docker/containers/{CID}/hosts", "options": ["rbind", "rprivate"]},
        {"destination": "/srv", "type": "bind", "source": "/srv", "options": ["rbind", "rslave"]},
    ],
    "hooks": {"createRuntime": [{"path": "/usr/bin/dockerd",
                                 "args": ["libnetwork-setkey", "-exec-root=/var/run/docker", CID, "c3ab8ff13720"]}]},
    "linux": {
        "sysctl": {"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"},
        "resources": {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": True, "type": "c", "major": 136, "minor": -1, "access": "rwm"},
                {"allow": False, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
            ],
            "memory": {"limit": 536870912, "swap": 1073741824},
            "cpu": {"shares": 0, "quota": 150000, "period": 100000},
            "blockIO": {"weight": 0},
            "pids": {"limit": 1024},
        },
        "cgroupsPath": f"system.slice:docker:{CID}",
        "namespaces": [{"type": "mount"}, {"type": "network"}, {"type": "uts"}, {"type": "pid"},
                       {"type": "ipc"}, {"type": "cgroup"}],
        "seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["accept", "accept4", "access", "read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            ],
        },
        "rootfsPropagation": "rslave",
        "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                        "/sys/firmware", "/sys/devices/virtual/powercap"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}

STATE = {"ociVersion": "1.2.0", "id": "oci-container1", "status": "running", "pid": 4422,
         "bundle": "/containers/redis", "annotations": {"myKey": "myValue"}}

FEATURES = {
    "ociVersionMin": "1.0.0",
    "ociVersionMax": "1.2.1",
    "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
    "mountOptions": ["bind", "rbind", "ro", "rw", "idmap"],
    "linux": {
        "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
        "capabilities": ["CAP_CHOWN", "CAP_KILL"],
        "cgroup": {"v1": False, "v2": True, "systemd": False, "systemdUser": None, "rdma": False},
        "seccomp": {"enabled": True, "actions": ["SCMP_ACT_ALLOW"], "operators": ["SCMP_CMP_EQ"],
                    "archs": ["SCMP_ARCH_X86_64"], "knownFlags": [], "supportedFlags": None},
        "apparmor": {"enabled": True},
        "selinux": None,
        "intelRdt": {"enabled": False},
        "mountExtensions": {"idmap": {"enabled": True}},
    },
    "annotations": {"org.opencontainers.runc.version": "1.1.0"},
    "potentiallyUnsafeConfigAnnotations": ["org.systemd.property."],
}


# --- the reference implementation -------------------------------------------

def _reference(name):
    """jsonschema for spec/<name>-schema.json, with ocirt's (and Go's) integer rule: 1.0 is not an integer."""
    from jsonschema import Draft202012Validator, validators
    with open(os.path.join(SPEC, name + "-schema.json"), encoding="utf-8") as f:
        doc = json.load(f)
    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, x: isinstance(x, int) and not isinstance(x, bool))
    cls = validators.extend(Draft202012Validator, type_checker=checker)
    return cls(doc)


REF = {n: _reference(n) for n in schema.SCHEMA_NAMES}
REF_CLASS = type(REF["config"])


def ours(doc, name="config"):
    try:
        schema.validate(doc, name)
    except ConfigError as e:
        return e
    return None


def _path_list(path):
    """Parse ocirt's dotted path back into a list of keys/indices."""
    out = []
    i = 0
    while i < len(path):
        if path[i] == ".":
            i += 1
        elif path[i] == "[":
            if path[i + 1] == '"':
                dec = json.JSONDecoder()
                key, end = dec.raw_decode(path, i + 1)
                out.append(key)
                i = end + 1
            else:
                j = path.index("]", i)
                out.append(int(path[i + 1:j]))
                i = j + 1
        else:
            j = i
            while j < len(path) and path[j] not in ".[":
                j += 1
            out.append(path[i:j])
            i = j
    return out


def assert_agree(doc, name="config"):
    """Our verdict equals jsonschema's, and our path lies under one of its error paths."""
    err = ours(doc, name)
    ref_errors = list(REF[name].iter_errors(doc))
    assert (err is None) == (not ref_errors), (
        f"ocirt says {err!s}, jsonschema says {[e.message for e in ref_errors][:3]}")
    if err is not None:
        mine = _path_list(err.path)
        ref_paths = [list(e.absolute_path) for e in ref_errors]
        assert any(mine[:len(p)] == p for p in ref_paths), (err.path, ref_paths)
    return err


def mutate(doc, path, value=None, delete=False):
    doc = copy.deepcopy(doc)
    node = doc
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    elif isinstance(node, list) and path[-1] == len(node):
        node.append(value)
    else:
        node[path[-1]] = value
    return doc


# --- valid documents --------------------------------------------------------

VALID = [
    ("runc-spec", RUNC_SPEC, "config"),
    ("runc-spec-rootless", RUNC_ROOTLESS, "config"),
    ("rich", RICH, "config"),
    ("docker", DOCKER, "config"),
    ("minimal", {"ociVersion": "1.0.0", "root": {"path": "rootfs"}}, "config"),
    ("unknown-fields", {"ociVersion": "1.0.2-dev+build.5", "root": {"path": "/r", "x-future": 1},
                        "future": {"a": [1]}, "linux": {"netDevices": {"eth0": {}}},
                        "process": {"cwd": "/", "args": ["sh"], "x": None}}, "config"),
    ("state", STATE, "state"),
    ("state-stopped-no-pid", {"ociVersion": "1.0.0", "id": "a", "status": "stopped", "bundle": "/b"}, "state"),
    ("state-custom-status", {"ociVersion": "1.0.0", "id": "a", "status": "paused", "bundle": "/b"}, "state"),
    ("features", FEATURES, "features"),
    ("features-min", {"ociVersionMin": "1.0.0", "ociVersionMax": "1.0.0", "hooks": None, "linux": None}, "features"),
]


@pytest.mark.parametrize("name,doc,kind", VALID, ids=[v[0] for v in VALID])
def test_valid(name, doc, kind):
    assert ours(doc, kind) is None
    assert_agree(doc, kind)


def test_runc_spec_fixtures_match_installed_runc(tmp_path):
    """The stored fixtures are what `runc spec` writes (when runc is installed)."""
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc not installed")
    for args, fixture in (([], RUNC_SPEC), (["--rootless"], RUNC_ROOTLESS)):
        d = tmp_path / ("r" if args else "p")
        d.mkdir()
        subprocess.run([runc, "spec", *args], cwd=d, check=True)
        generated = json.loads((d / "config.json").read_text())
        assert ours(generated) is None
        assert generated == fixture


def test_rich_config_sets_every_schema_property():
    """Every property named in config-schema.json appears somewhere in RICH."""
    with open(os.path.join(SPEC, "config-schema.json")) as f:
        doc = json.load(f)
    names = set()

    def walk(s):
        if isinstance(s, dict):
            for k, v in s.get("properties", {}).items():
                names.add(k)
                walk(v)
            for key in ("items", "additionalProperties"):
                walk(s.get(key))
            for key in ("anyOf", "oneOf"):
                for b in s.get(key, ()):
                    walk(b)
            for v in s.get("$defs", {}).values():
                walk(v)
    walk(doc)
    used = set()

    def collect(x):
        if isinstance(x, dict):
            used.update(x)
            for v in x.values():
                collect(v)
        elif isinstance(x, list):
            for v in x:
                collect(v)
    collect(RICH)
    assert names - used <= {"windows", "solaris", "vm", "zos", "freebsd"}


# --- invalid documents: exact path and message ------------------------------

NS_ENUM = "must be one of pid, network, mount, ipc, uts, user, cgroup, time"
R = RUNC_SPEC

INVALID = [
    # (id, document, schema, path, message)
    ("not-object", [], "config", "", "must be an object"),
    ("no-ociVersion", mutate(R, ["ociVersion"], delete=True), "config", "ociVersion", "is required"),
    ("ociVersion-int", mutate(R, ["ociVersion"], 1), "config", "ociVersion", "must be a SemVer 2.0.0 version"),
    ("ociVersion-short", mutate(R, ["ociVersion"], "1.0"), "config", "ociVersion", "must be a SemVer 2.0.0 version"),
    ("ociVersion-newline", mutate(R, ["ociVersion"], "1.0.0\n"), "config", "ociVersion",
     "must be a SemVer 2.0.0 version"),
    ("no-root", mutate(R, ["root"], delete=True), "config", "root", "is required"),
    ("no-root-path", mutate(R, ["root", "path"], delete=True), "config", "root.path", "is required"),
    ("root-readonly", mutate(R, ["root", "readonly"], "yes"), "config", "root.readonly", "must be a boolean"),
    ("args-type", mutate(R, ["process", "args"], "sh"), "config", "process.args", "must be an array"),
    ("args-empty", mutate(R, ["process", "args"], []), "config", "process.args", "must not be empty"),
    ("args-item", mutate(R, ["process", "args"], ["sh", 1]), "config", "process.args[1]", "must be a string"),
    ("no-args", mutate(R, ["process", "args"], delete=True), "config", "process.args", "is required"),
    ("cwd-relative", mutate(R, ["process", "cwd"], "tmp"), "config", "process.cwd", "must be an absolute path"),
    ("no-cwd", mutate(R, ["process", "cwd"], delete=True), "config", "process.cwd", "is required"),
    ("uid-negative", mutate(R, ["process", "user", "uid"], -1), "config", "process.user.uid",
     "must be an integer >= 0"),
    ("uid-too-big", mutate(R, ["process", "user", "uid"], 4294967296), "config", "process.user.uid",
     "must be an integer <= 4294967295"),
    ("gid-string", mutate(R, ["process", "user", "gid"], "0"), "config", "process.user.gid", "must be an integer"),
    ("uid-float", mutate(R, ["process", "user", "uid"], 1.0), "config", "process.user.uid", "must be an integer"),
    ("uid-bool", mutate(R, ["process", "user", "uid"], True), "config", "process.user.uid", "must be an integer"),
    ("additionalGids", mutate(R, ["process", "user", "additionalGids"], [1, -2]), "config",
     "process.user.additionalGids[1]", "must be an integer >= 0"),
    ("terminal", mutate(R, ["process", "terminal"], "true"), "config", "process.terminal", "must be a boolean"),
    ("consoleSize", mutate(R, ["process", "consoleSize"], {"height": 1}), "config", "process.consoleSize.width",
     "is required"),
    ("rlimit-type", mutate(R, ["process", "rlimits", 0, "type"], "RLIMIT_FOO"), "config",
     "process.rlimits[0].type", "must be one of " + ", ".join(
         "RLIMIT_" + n for n in ("AS CORE CPU DATA FSIZE LOCKS MEMLOCK MSGQUEUE NICE NOFILE NPROC RSS "
                                 "RTPRIO RTTIME SIGPENDING STACK").split())),
    ("rlimit-soft", mutate(R, ["process", "rlimits", 0, "soft"], delete=True), "config",
     "process.rlimits[0].soft", "is required"),
    ("caps", mutate(R, ["process", "capabilities", "bounding"], "CAP_KILL"), "config",
     "process.capabilities.bounding", "must be an array"),
    ("scheduler", mutate(RICH, ["process", "scheduler", "policy"], "SCHED_X"), "config",
     "process.scheduler.policy", "must be one of SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, "
     "SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE"),
    ("nice", mutate(RICH, ["process", "scheduler", "nice"], 2 ** 31), "config", "process.scheduler.nice",
     "must be an integer <= 2147483647"),
    ("ioPriority", mutate(RICH, ["process", "ioPriority", "priority"], 8), "config",
     "process.ioPriority.priority", "must be an integer <= 7"),
    ("cpu-affinity", mutate(RICH, ["process", "execCPUAffinity", "final"], "0-3;7"), "config",
     "process.execCPUAffinity.final", "must be a CPU list such as 0-3,7"),
    ("ns-type", mutate(R, ["linux", "namespaces", 2, "type"], "net"), "config", "linux.namespaces[2].type",
     NS_ENUM),
    ("ns-no-type", mutate(R, ["linux", "namespaces", 1], {"path": "/proc/1/ns/net"}), "config",
     "linux.namespaces[1].type", "is required"),
    ("ns-path", mutate(R, ["linux", "namespaces", 1, "path"], "proc/1/ns/net"), "config",
     "linux.namespaces[1].path", "must be an absolute path"),
    ("ns-duplicate", mutate(R, ["linux", "namespaces", 5], {"type": "pid"}), "config", "linux.namespaces[5]",
     "must not repeat item 0"),
    ("uidMappings", mutate(RICH, ["linux", "uidMappings", 0, "size"], delete=True), "config",
     "linux.uidMappings[0].size", "is required"),
    ("timeOffsets", mutate(RICH, ["linux", "timeOffsets", "monotonic", "nanosecs"], -1), "config",
     "linux.timeOffsets.monotonic.nanosecs", "must be an integer >= 0"),
    ("device-major", mutate(R, ["linux", "devices"], [{"type": "c", "path": "/dev/x"}]), "config",
     "linux.devices[0].major", "must be set unless type is p"),
    ("device-type", mutate(RICH, ["linux", "devices", 0, "type"], "x"), "config", "linux.devices[0].type",
     "must be one of c, b, u, p"),
    ("device-path", mutate(RICH, ["linux", "devices", 1, "path"], delete=True), "config",
     "linux.devices[1].path", "is required"),
    ("dev-access", mutate(R, ["linux", "resources", "devices", 0, "access"], "rwx"), "config",
     "linux.resources.devices[0].access", "must be made of the letters r, w and m"),
    ("dev-allow", mutate(R, ["linux", "resources", "devices", 0, "allow"], delete=True), "config",
     "linux.resources.devices[0].allow", "is required"),
    ("memory-limit", mutate(RICH, ["linux", "resources", "memory", "limit"], "1G"), "config",
     "linux.resources.memory.limit", "must be an integer"),
    ("swappiness", mutate(RICH, ["linux", "resources", "memory", "swappiness"], -1), "config",
     "linux.resources.memory.swappiness", "must be an integer >= 0"),
    ("checkBeforeUpdate", mutate(RICH, ["linux", "resources", "memory", "checkBeforeUpdate"], 1), "config",
     "linux.resources.memory.checkBeforeUpdate", "must be a boolean"),
    ("cpu-burst", mutate(RICH, ["linux", "resources", "cpu", "burst"], -1), "config",
     "linux.resources.cpu.burst", "must be an integer >= 0"),
    ("cpu-idle", mutate(RICH, ["linux", "resources", "cpu", "idle"], "1"), "config",
     "linux.resources.cpu.idle", "must be an integer"),
    ("pids", mutate(RICH, ["linux", "resources", "pids"], {}), "config", "linux.resources.pids.limit",
     "is required"),
    ("hugepage", mutate(RICH, ["linux", "resources", "hugepageLimits", 0, "pageSize"], "2M"), "config",
     "linux.resources.hugepageLimits[0].pageSize", "must be a size such as 64KB, 2MB or 1GB"),
    ("blkio-weight", mutate(RICH, ["linux", "resources", "blockIO", "weight"], 70000), "config",
     "linux.resources.blockIO.weight", "must be an integer <= 65535"),
    ("weightDevice", mutate(RICH, ["linux", "resources", "blockIO", "weightDevice", 0], {"major": 8, "minor": 0}),
     "config", "linux.resources.blockIO.weightDevice[0].weight", "must be set when leafWeight is not"),
    ("throttle", mutate(RICH, ["linux", "resources", "blockIO", "throttleReadBpsDevice", 0, "rate"], delete=True),
     "config", "linux.resources.blockIO.throttleReadBpsDevice[0].rate", "is required"),
    ("network", mutate(RICH, ["linux", "resources", "network", "priorities", 1, "priority"], -1), "config",
     "linux.resources.network.priorities[1].priority", "must be an integer >= 0"),
    ("rdma", mutate(RICH, ["linux", "resources", "rdma", "mlx5_1"], {}), "config",
     "linux.resources.rdma.mlx5_1.hcaHandles", "must be set when hcaObjects is not"),
    ("unified", mutate(RICH, ["linux", "resources", "unified", "io.max"], 5), "config",
     'linux.resources.unified["io.max"]', "must be a string"),
    ("sysctl", mutate(RICH, ["linux", "sysctl", "net.ipv4.ip_forward"], 1), "config",
     'linux.sysctl["net.ipv4.ip_forward"]', "must be a string"),
    ("intelRdt", mutate(RICH, ["linux", "intelRdt", "memBwSchema"], "MB:0=20\n"), "config",
     "linux.intelRdt.memBwSchema", "must start with MB: and contain no newline"),
    ("seccomp-default", mutate(RICH, ["linux", "seccomp", "defaultAction"], delete=True), "config",
     "linux.seccomp.defaultAction", "is required"),
    ("seccomp-names", mutate(RICH, ["linux", "seccomp", "syscalls", 0, "names"], []), "config",
     "linux.seccomp.syscalls[0].names", "must not be empty"),
    ("seccomp-op", mutate(RICH, ["linux", "seccomp", "syscalls", 2, "args", 0, "op"], "SCMP_CMP_XX"), "config",
     "linux.seccomp.syscalls[2].args[0].op", "must be one of SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, "
     "SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ"),
    ("seccomp-value", mutate(RICH, ["linux", "seccomp", "syscalls", 2, "args", 0, "value"], 2 ** 64), "config",
     "linux.seccomp.syscalls[2].args[0].value", "must be an integer <= 18446744073709551615"),
    ("seccomp-errnoRet", mutate(RICH, ["linux", "seccomp", "syscalls", 0, "errnoRet"], 1), "config",
     "linux.seccomp.syscalls[0].errnoRet", "must not be set unless action is SCMP_ACT_ERRNO or SCMP_ACT_TRACE"),
    ("seccomp-defaultErrnoRet", mutate(RICH, ["linux", "seccomp", "defaultAction"], "SCMP_ACT_KILL"), "config",
     "linux.seccomp.defaultErrnoRet",
     "must not be set unless defaultAction is SCMP_ACT_ERRNO or SCMP_ACT_TRACE"),
    ("seccomp-listener", mutate(RICH, ["linux", "seccomp", "listenerPath"], delete=True), "config",
     "linux.seccomp.listenerPath", "must be set when listenerMetadata is set"),
    ("seccomp-flag", mutate(RICH, ["linux", "seccomp", "flags", 1], "SECCOMP_FILTER_FLAG_X"), "config",
     "linux.seccomp.flags[1]", "must be one of SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG, "
     "SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
    ("propagation", mutate(R, ["linux", "rootfsPropagation"], "rshared2"), "config", "linux.rootfsPropagation",
     "must be one of shared, slave, private, unbindable, rshared, rslave, rprivate, runbindable"),
    ("maskedPaths", mutate(R, ["linux", "maskedPaths", 2], "proc/kcore"), "config", "linux.maskedPaths[2]",
     "must be an absolute path"),
    ("readonlyPaths", mutate(R, ["linux", "readonlyPaths"], "/proc/sys"), "config", "linux.readonlyPaths",
     "must be an array"),
    ("personality-domain", mutate(RICH, ["linux", "personality", "domain"], "LINUX64"), "config",
     "linux.personality.domain", "must be one of LINUX, LINUX32"),
    ("personality-flags", mutate(RICH, ["linux", "personality", "flags"], ["X"]), "config",
     "linux.personality.flags", "must be empty"),
    ("mountLabel", mutate(RICH, ["linux", "mountLabel"], None), "config", "linux.mountLabel", "must be a string"),
    ("mounts-type", mutate(R, ["mounts"], {}), "config", "mounts", "must be an array"),
    ("mount-destination", mutate(R, ["mounts", 0, "destination"], delete=True), "config",
     "mounts[0].destination", "is required"),
    ("mount-options", mutate(R, ["mounts", 1, "options"], "nosuid"), "config", "mounts[1].options",
     "must be an array"),
    ("mount-idmap-pair", mutate(RICH, ["mounts", 1, "gidMappings"], delete=True), "config",
     "mounts[1].gidMappings", "must be set when the other of uidMappings and gidMappings is set"),
    ("hook-path", mutate(RICH, ["hooks", "prestart", 0, "path"], "fix-mounts"), "config",
     "hooks.prestart[0].path", "must be an absolute path"),
    ("hook-timeout", mutate(RICH, ["hooks", "poststart", 0, "timeout"], 0), "config",
     "hooks.poststart[0].timeout", "must be an integer >= 1"),
    ("hook-args", mutate(RICH, ["hooks", "poststop", 0, "args"], "x"), "config", "hooks.poststop[0].args",
     "must be an array"),
    ("hook-no-path", mutate(RICH, ["hooks", "startContainer", 0], {"args": []}), "config",
     "hooks.startContainer[0].path", "is required"),
    ("annotation-empty-key", mutate(R, ["annotations"], {"": "x"}), "config", 'annotations[""]',
     "is not allowed"),
    ("annotation-value", mutate(R, ["annotations"], {"a": 1}), "config", "annotations.a", "must be a string"),
    ("hostname", mutate(R, ["hostname"], 5), "config", "hostname", "must be a string"),
    ("windows", mutate(R, ["windows"], 5), "config", "windows", "must be an object"),
    # document order: the first violation in the file wins, object-level ones before members
    ("order-members", mutate(mutate(R, ["process", "env"], 1), ["linux", "maskedPaths"], 1), "config",
     "process.env", "must be an array"),
    ("order-required-first", mutate(mutate(R, ["process", "env"], 1), ["root"], delete=True), "config",
     "root", "is required"),
    ("order-array", mutate(mutate(R, ["mounts", 3, "source"], 1), ["mounts", 1, "type"], 1), "config",
     "mounts[1].type", "must be a string"),
    # state
    ("state-no-id", mutate(STATE, ["id"], delete=True), "state", "id", "is required"),
    ("state-empty-id", mutate(STATE, ["id"], ""), "state", "id", "must not be empty"),
    ("state-pid-needed", mutate(STATE, ["pid"], delete=True), "state", "pid",
     "must be set when status is created or running"),
    ("state-pid", mutate(STATE, ["pid"], -1), "state", "pid", "must be an integer >= 0"),
    ("state-bundle", mutate(STATE, ["bundle"], "containers/redis"), "state", "bundle", "must be an absolute path"),
    ("state-status", mutate(STATE, ["status"], 3), "state", "status", "must be a string"),
    # features
    ("features-max", mutate(FEATURES, ["ociVersionMax"], delete=True), "features", "ociVersionMax", "is required"),
    ("features-bool", mutate(FEATURES, ["linux", "cgroup", "v1"], "yes"), "features", "linux.cgroup.v1",
     "must be a boolean or null"),
    ("features-list", mutate(FEATURES, ["mountOptions"], "bind"), "features", "mountOptions",
     "must be an array or null"),
    ("features-idmap", mutate(FEATURES, ["linux", "mountExtensions", "idmap"], []), "features",
     "linux.mountExtensions.idmap", "must be an object or null"),
]


@pytest.mark.parametrize("name,doc,kind,path,message", INVALID, ids=[v[0] for v in INVALID])
def test_invalid(name, doc, kind, path, message):
    with pytest.raises(ConfigError) as ei:
        schema.validate(doc, kind)
    assert (ei.value.path, ei.value.message) == (path, message)
    assert str(ei.value) == (f"{path}: {message}" if path else message)


@pytest.mark.parametrize("name,doc,kind,path,message", INVALID, ids=[v[0] for v in INVALID])
def test_invalid_agrees_with_jsonschema(name, doc, kind, path, message):
    assert assert_agree(doc, kind) is not None


def test_table_is_big_enough():
    assert len(INVALID) >= 40


# --- the validator on its own, for keywords the spec schemas barely use -----

def run(sch, inst):
    e = schema._Compiler(sch).compile(sch)(inst, None)
    return None if e is None else (schema._path(e[0]), e[1])


def ref_valid(sch, inst):
    from jsonschema import Draft202012Validator
    return Draft202012Validator(sch).is_valid(inst)


SYNTHETIC = [
    ({"type": ["string", "null"]}, 1, ("", "must be a string or null")),
    ({"const": {"a": [1, 2]}}, {"a": [1.0, 2]}, None),
    ({"const": 1}, True, ("", "must be 1")),
    ({"enum": [1, "a", None]}, False, ("", "must be one of 1, a, null")),
    ({"enum": [1, "a", None]}, 1.0, None),
    ({"minLength": 2}, "é", ("", "must be at least 2 characters long")),
    ({"minLength": 2}, 5, None),
    ({"maxItems": 1}, [1, 2], ("", "must have at most 1 item")),
    ({"minItems": 2}, [1], ("", "must have at least 2 items")),
    ({"uniqueItems": True}, [1, True], None),
    ({"uniqueItems": True}, [0, {"a": 1}, {"a": 1.0}], ("[2]", "must not repeat item 1")),
    ({"uniqueItems": True, "items": {"type": "integer"}}, [1, "x", 1], ("[1]", "must be an integer")),
    ({"minimum": 0}, -0.5, ("", "must be >= 0")),
    ({"type": "number", "maximum": 1.5}, 2, ("", "must be a number <= 1.5")),
    ({"additionalProperties": False, "properties": {"a": True}}, {"a": 1, "b-c": 2},
     ('["b-c"]', "is not allowed")),
    ({"patternProperties": {"^x": {"type": "string"}, "y$": {"type": "integer"}}}, {"xy": 1},
     ("xy", "must be a string")),
    ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, 1,
     ("", "must match exactly one alternative, but matches 0 and 1")),
    ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, -1, None),
    ({"anyOf": [{"type": "string"}, {"type": "object"}]}, 1, ("", "must be a string or an object")),
    ({"anyOf": [{"type": "string"}, {"type": "object", "properties": {"a": {"type": "null"}}}]}, {"a": 1},
     ("a", "must be null")),
    ({"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}, {}, ("a", "is required")),
    ({"$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"},
     [[[]], [[1]]], ("[1][0][0]", "must be an array")),
    ({"properties": {"a": {"type": "integer"}}, "$ref": "#/$defs/b",
      "$defs": {"b": {"required": ["z"]}}}, {"a": "x"}, ("z", "is required")),
    (True, {"anything": 1}, None),
    (False, 1, ("", "is not allowed")),
    ({"items": {"type": "string", "description": "must be text"}}, ["a", 2], ("[1]", "must be text")),
]


@pytest.mark.parametrize("sch,inst,expected", SYNTHETIC)
def test_synthetic(sch, inst, expected):
    assert run(sch, inst) == expected
    assert ref_valid(sch, inst) == (expected is None)


PATTERNS = ["^a", "b$", "^[0-9]+(?![\\s\\S])", "x|y", "^$", "."]
TYPES = ["string", "integer", "number", "boolean", "object", "array", "null"]
small_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.5, 1.0, -2.0]),
              st.sampled_from(["", "a", "ab", "b", "12", "x", "é"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["a", "b", "ab", "x1", ""]), inner, max_size=3)),
    max_leaves=5,
)


def _keyword_schemas(inner):
    keys = st.sampled_from(["a", "b", "ab", "x1", ""])
    options = {
        "type": st.one_of(st.sampled_from(TYPES), st.lists(st.sampled_from(TYPES), min_size=1, max_size=3,
                                                           unique=True)),
        "enum": st.lists(small_values, min_size=1, max_size=3),
        "const": small_values,
        "pattern": st.sampled_from(PATTERNS),
        "minimum": st.sampled_from([0, -1, 0.5, 2]),
        "maximum": st.sampled_from([0, 1, 2.5]),
        "minLength": st.integers(0, 2),
        "minItems": st.integers(0, 2),
        "maxItems": st.integers(0, 2),
        "uniqueItems": st.booleans(),
        "required": st.lists(keys, max_size=2, unique=True),
        "properties": st.dictionaries(keys, inner, max_size=2),
        "patternProperties": st.dictionaries(st.sampled_from(PATTERNS), inner, max_size=2),
        "additionalProperties": inner,
        "items": inner,
        "anyOf": st.lists(inner, min_size=1, max_size=3),
        "oneOf": st.lists(inner, min_size=1, max_size=3),
        "description": st.sampled_from(["x", "must be good"]),
    }

    @st.composite
    def build(draw):
        names = draw(st.lists(st.sampled_from(sorted(options)), min_size=1, max_size=3, unique=True))
        return {n: draw(options[n]) for n in names}
    return build()


random_schemas = st.recursive(st.one_of(st.booleans(), st.just({})), _keyword_schemas, max_leaves=4)


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(random_schemas, small_values)
def test_random_schemas_agree_with_jsonschema(sch, inst):
    """The interpreter itself, on random schemas of the keyword subset."""
    assert (run(sch, inst) is None) == REF_CLASS(sch).is_valid(inst)


def test_unsupported_keyword_is_refused():
    with pytest.raises(ValueError, match="allOf"):
        run({"allOf": []}, 1)
    with pytest.raises(ValueError):
        run({"$ref": "other.json#/x"}, 1)


def test_unknown_schema_name():
    with pytest.raises(ValueError):
        schema.validate({}, "nope")


def _walk_schemas(s, out):
    """Every subschema of a schema document."""
    if isinstance(s, bool):
        return
    out.append(s)
    for key in ("properties", "patternProperties", "$defs"):
        for v in s.get(key, {}).values():
            _walk_schemas(v, out)
    for key in ("items", "additionalProperties"):
        if key in s:
            _walk_schemas(s[key], out)
    for key in ("anyOf", "oneOf"):
        for v in s.get(key, ()):
            _walk_schemas(v, out)


@pytest.mark.parametrize("name", schema.SCHEMA_NAMES)
def test_schema_files_use_only_the_subset(name):
    from jsonschema import Draft202012Validator
    with open(os.path.join(SPEC, name + "-schema.json")) as f:
        doc = json.load(f)
    Draft202012Validator.check_schema(doc)
    subs = []
    _walk_schemas(doc, subs)
    allowed = {"type", "properties", "required", "items", "enum", "const", "pattern", "minimum", "maximum",
               "minLength", "minItems", "maxItems", "uniqueItems", "additionalProperties",
               "patternProperties", "$ref", "$defs", "anyOf", "oneOf", "description"}
    for s in subs:
        extra = set(s) - allowed - ({"$schema"} if s is doc else set())
        assert not extra, (extra, s)
        if "$ref" in s:
            assert s["$ref"].startswith("#/$defs/")
    # every $defs entry compiles (compilation is lazy in normal use)
    comp = schema._Compiler(doc)
    for s in subs:
        comp.compile(s)


# --- hypothesis: mutated configs, our verdict == jsonschema's ----------------

def _all_paths(x, prefix=()):
    out = [prefix] if prefix else []
    if isinstance(x, dict):
        for k, v in x.items():
            out += _all_paths(v, prefix + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            out += _all_paths(v, prefix + (i,))
    return out


BASES = [RICH, DOCKER, RUNC_ROOTLESS]
BASE_PATHS = [_all_paths(b) for b in BASES]

INTERESTING_INTS = [-1, 0, 1, 7, 8, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32,
                    2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64, -2 ** 63, -2 ** 63 - 1]
INTERESTING_STRS = ["", "/", "/abs", "rel", "pid", "net", "c", "p", "a", "rwm", "rwx", "SCMP_ACT_ERRNO",
                    "SCMP_ACT_ALLOW", "SCMP_ACT_KILL", "1.0.0", "1.0", "1.0.0\n", "MB:1", "L3:1", "2MB",
                    "0-3,7", "0-", "RLIMIT_NOFILE", "LINUX", "slave", "rslave", "SCHED_RR", "\n"]

scalars = st.one_of(
    st.none(), st.booleans(), st.sampled_from(INTERESTING_INTS), st.integers(-2 ** 70, 2 ** 70),
    st.floats(allow_nan=False, allow_infinity=False), st.just(1.0), st.sampled_from(INTERESTING_STRS),
    st.text(max_size=6),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["", "a", "type", "path", "x.y", "limit"]), inner,
                                            max_size=3)),
    max_leaves=6,
)


def _near_miss(draw, v):
    """A value of the same JSON type as `v` that is likely to hit a range, enum, pattern,
    length, uniqueness or required-member rule."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return draw(st.sampled_from(INTERESTING_INTS + [v - 1, v + 1, -v]))
    if isinstance(v, str):
        return draw(st.sampled_from(INTERESTING_STRS + [v.lstrip("/"), v + "\n", v.upper(), v.lower(),
                                                        v + "X", v[:-1], "/" + v]))
    if isinstance(v, list):
        choice = draw(st.integers(0, 3))
        if choice == 0 or not v:
            return []
        if choice == 1:
            return v + [copy.deepcopy(v[0])]
        if choice == 2:
            return v[1:]
        return v + [_near_miss(draw, copy.deepcopy(v[-1]))]
    if isinstance(v, dict):
        v = dict(v)
        choice = draw(st.integers(0, 3))
        if choice == 0:
            return {}
        if choice == 1 and v:
            del v[draw(st.sampled_from(sorted(v)))]
        elif choice == 2:
            v[draw(st.sampled_from(["", "x.y", "unknownField"]))] = draw(st.sampled_from(["v", 1, None]))
        elif v:
            k = draw(st.sampled_from(sorted(v)))
            v[k] = _near_miss(draw, v[k])
        return v
    return draw(json_values)


@st.composite
def mutated_configs(draw):
    b = draw(st.integers(0, len(BASES) - 1))
    doc = copy.deepcopy(BASES[b])
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        # pick the kind of value first, so that the few arrays and objects are hit as often as
        # the many strings
        by_kind = {}
        for p in _all_paths(doc):
            v = doc
            for k in p:
                v = v[k]
            by_kind.setdefault(type(v).__name__, []).append(p)
        path = draw(st.sampled_from(by_kind[draw(st.sampled_from(sorted(by_kind)))]))
        op = draw(st.sampled_from(["near"] * 4 + ["replace"] * 2 + ["delete"] * 2 + ["add"] + ["swap"]))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        if op == "near":
            parent[key] = _near_miss(draw, parent[key])
        elif op == "replace":
            parent[key] = draw(json_values)
        elif op == "delete":
            del parent[key]
        elif op == "add":
            target = parent[key]
            if isinstance(target, dict):
                target[draw(st.sampled_from(["", "unknownField", "path", "type", "io.max"]))] = draw(json_values)
            elif isinstance(target, list):
                target.append(copy.deepcopy(target[0]) if target and draw(st.booleans()) else draw(json_values))
            else:
                parent[key] = [target]
        else:  # swap a value for a same-looking value of another JSON type
            v = parent[key]
            if isinstance(v, bool):
                parent[key] = int(v)
            elif isinstance(v, int):
                parent[key] = draw(st.sampled_from([str(v), float(v), [v]]))
            elif isinstance(v, str):
                parent[key] = draw(st.sampled_from([[v], len(v), None]))
            elif isinstance(v, list):
                parent[key] = {"0": v[0]} if v else {}
            elif isinstance(v, dict):
                parent[key] = list(v.values())
            else:
                parent[key] = "null"
    return doc


@settings(max_examples=500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_configs())
def test_mutated_configs_agree_with_jsonschema(doc):
    assert_agree(doc, "config")


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["state", "features"]), st.data())
def test_mutated_state_and_features_agree(kind, data):
    base = STATE if kind == "state" else FEATURES
    doc = copy.deepcopy(base)
    paths = _all_paths(doc)
    path = data.draw(st.sampled_from(paths))
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values)
    assert_agree(doc, kind)


# --- cost and packaging -----------------------------------------------------

def _python(code, cwd, env=None):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, check=True).stdout


def test_import_does_not_load_jsonschema_or_anything_heavy():
    out = _python("""
        import json, os, re, sys
        import ocirt
        before = set(sys.modules)
        import ocirt.schema
        added = set(sys.modules) - before
        import json as j
        ocirt.schema.validate(j.load(open("tests/unit/data/runc-spec.json")))
        print(j.dumps({"added": sorted(added), "all": sorted(sys.modules)}))
    """, cwd=REPO)
    res = json.loads(out)
    assert "jsonschema" not in res["all"]
    assert set(res["added"]) <= {"ocirt.schema", "ocirt.errors", "ocirt.jsonfast", "ocirt.lazy"}


def test_schema_found_in_installed_layout(tmp_path):
    """After pip install the schemas live in <site-packages>/ocirt/spec/."""
    pkg = tmp_path / "site" / "ocirt"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for f in ("errors.py", "schema.py"):
        shutil.copy(os.path.join(REPO, "ocirt", f), pkg / f)
    (pkg / "spec").mkdir()
    for n in schema.SCHEMA_NAMES:
        shutil.copy(os.path.join(SPEC, n + "-schema.json"), pkg / "spec")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    out = _python("""
        import json, sys, ocirt.schema as s
        s.validate(json.load(open(sys.argv[1] if len(sys.argv) > 1 else "%s")))
        print(s.schema_file("config"))
    """ % os.path.join(DATA, "runc-spec.json"), cwd=str(tmp_path), env=env)
    assert out.strip() == str(pkg / "spec" / "config-schema.json")


def test_unknown_fields_lists_what_the_schema_does_not_name():
    assert fields.unknown_fields(RICH) == []
    doc = json.loads(json.dumps(RICH))
    doc["root"]["x-future"] = 1
    doc["linux"]["netDevices"]["eth1"]["mtu"] = 9000
    doc["linux"]["sysctl"]["any.key"] = "1"          # a map: every key is known
    doc["annotations"]["x"] = "y"
    doc["mounts"][1]["newOpt"] = True
    doc["linux"]["seccomp"]["syscalls"][2]["args"][0]["extra"] = 0
    assert fields.unknown_fields(doc) == [
        'root["x-future"]', "mounts[1].newOpt", "linux.netDevices.eth1.mtu",
        "linux.seccomp.syscalls[2].args[0].extra"]
