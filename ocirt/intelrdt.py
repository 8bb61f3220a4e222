"""linux.intelRdt: resctrl. Until ocirt writes schemata, a config asking for it is
refused by name (never run without the cache or bandwidth limits it asked for)."""
from .errors import ConfigError


def resctrl_mount(mountinfo="/proc/self/mountinfo"):
    """Where resctrl is mounted, or None."""
    try:
        with open(mountinfo) as f:
            for line in f:
                right = line.partition(" - ")[2].split()
                if right and right[0] == "resctrl":
                    return line.split()[4]
    except OSError:
        pass
    return None


def check(cfg):
    rdt = (cfg.get("linux") or {}).get("intelRdt")
    if rdt is None:
        return
    if resctrl_mount() is None:
        raise ConfigError("linux.intelRdt", "Intel RDT is not supported or enabled on this "
                          "host (resctrl is not mounted at /sys/fs/resctrl)")
    raise ConfigError("linux.intelRdt", "Intel RDT is not implemented by ocirt yet; "
                      "refusing rather than running without it")
