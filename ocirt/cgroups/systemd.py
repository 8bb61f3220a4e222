"""--systemd-cgroup: cgroupsPath in systemd's slice:prefix:name form, placed by
systemd (a transient scope with Delegate=yes) over its D-Bus API."""
import os

from ..errors import ConfigError, OcirtError

FIELD = "linux.cgroupsPath"


def parse(path, cid):
    """'slice:prefix:name' -> (slice, unit name). Absent -> system.slice, ocirt-<id>.scope."""
    if not path:
        return "system.slice", f"ocirt-{cid}.scope"
    parts = path.split(":")
    if len(parts) != 3:
        raise ConfigError(FIELD, f"{path!r}: with --systemd-cgroup the path must be "
                          "slice:prefix:name")
    slc, prefix, name = parts
    slc = slc or "system.slice"
    if not slc.endswith(".slice") or "/" in slc:
        raise ConfigError(FIELD, f"{path!r}: {slc!r} is not a systemd slice name")
    if not name:
        raise ConfigError(FIELD, f"{path!r}: the name part is empty")
    if name.endswith(".slice"):
        unit = name
    else:
        unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    return slc, unit


def slice_path(slc):
    """system-foo-bar.slice -> /system.slice/system-foo.slice/system-foo-bar.slice"""
    if slc == "-.slice":
        return "/"
    stem = slc[:-len(".slice")]
    parts = stem.split("-")
    out = []
    for i in range(len(parts)):
        out.append("-".join(parts[:i + 1]) + ".slice")
    return "/" + "/".join(out)


def running():
    return os.path.isdir("/run/systemd/system")


def place(path, cid):
    """Return the cgroup path systemd gives the unit, or fail clearly."""
    slc, unit = parse(path, cid)
    if not running():
        raise OcirtError(f"--systemd-cgroup: systemd is not running on this host (no "
                         f"/run/systemd/system), so {unit} in {slc} cannot be created; "
                         "run without --systemd-cgroup and a plain linux.cgroupsPath")
    # TODO: StartTransientUnit(unit, "fail", [Slice, Delegate=yes, PIDs]) over the
    # system bus, once the intermediate's pid is known (Cgroup.add_pid).
    raise OcirtError(f"--systemd-cgroup: placing {unit} in {slc} through systemd's D-Bus "
                     "API is not implemented in this ocirt; run without --systemd-cgroup")
