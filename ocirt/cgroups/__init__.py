"""cgroups: one interface over the v1 and v2 drivers (a stub to be completed)."""
import os

from ..errors import ConfigError


def setup(cfg, cid):
    linux = cfg.get("linux") or {}
    res = linux.get("resources") or {}
    for key, val in res.items():
        if val not in (None, [], {}) and key != "devices":
            raise ConfigError(f"linux.resources.{key}", "cgroup limits are not supported yet")
    return None


def is_frozen(state):
    return False


def mount_in_container(target, opts, where, cgroup):
    raise ConfigError(where, "cgroup mounts are not supported yet")
