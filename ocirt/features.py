"""The OCI features document (features.md): what this build of ocirt supports."""
from . import OCI_VERSION
from .capabilities import NAMES
from .mempolicy import FLAGS as MPOL_FLAGS, MODES as MPOL_MODES
from .rootfs.mounts import PROPAGATION, _FLAGS, _RECURSIVE
from .seccomp import features as seccomp_features


def features():
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": sorted(set(_FLAGS) | set(PROPAGATION) | set(_RECURSIVE)
                               | {"tmpcopyup", "idmap", "ridmap"}),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": list(NAMES),
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": True,
                       "rdma": True},
            # applied where the host has them (process/attrs.py), refused by name where not
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "seccomp": _seccomp(),
            "intelRdt": {"enabled": True, "schemata": True, "monitoring": True},
            "mountExtensions": {"idmap": {"enabled": True}},
            "memoryPolicy": {"modes": list(MPOL_MODES), "flags": list(MPOL_FLAGS)},
            "netDevices": {"enabled": True},
        },
        "annotations": {"org.opencontainers.runtime-spec.features.ocirt.version": "0.1.0"},
    }


def _seccomp():
    return seccomp_features()
