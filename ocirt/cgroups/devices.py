"""linux.resources.devices: rule validation, the v1 text form, and the v2 eBPF program.

The rule list a container gets is the config's rules, then (as runc does) an allow
rule for every device the runtime itself creates (/dev/null, zero, full, random,
urandom, tty, console, ptmx, pts/*), plus mknod of anything, so a deny-all list never
breaks the container's own /dev. A linux.devices entry gets no rule of its own: it
is made in /dev, and reachable only where linux.resources.devices allows it (runc's
rule; engines send an allow rule with each device they add).
"""
from ..errors import ConfigError

FIELD = "linux.resources.devices"

# (type, major, minor, access); None = any
DEFAULT_ALLOWED = [
    ("c", None, None, "m"), ("b", None, None, "m"),
    ("c", 1, 3, "rwm"), ("c", 1, 5, "rwm"), ("c", 1, 7, "rwm"), ("c", 1, 8, "rwm"),
    ("c", 1, 9, "rwm"), ("c", 5, 0, "rwm"), ("c", 5, 1, "rwm"), ("c", 5, 2, "rwm"),
    ("c", 136, None, "rwm"),
]


class Rule:
    __slots__ = ("allow", "type", "major", "minor", "access")

    def __init__(self, allow, typ, major, minor, access):
        self.allow, self.type, self.major, self.minor, self.access = (
            allow, typ, major, minor, access)

    def v1(self):
        """The devices.allow/deny line."""
        if self.type == "a":
            return "a"
        mj = "*" if self.major is None else str(self.major)
        mn = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {mj}:{mn} {self.access}"

    def to_json(self):
        return {"allow": self.allow, "type": self.type, "major": self.major,
                "minor": self.minor, "access": self.access}

    def __repr__(self):
        return f"Rule({'allow' if self.allow else 'deny'} {self.v1()})"


def _num(v, where):
    if v is None or v == -1:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > 0xFFFFFFFF:
        raise ConfigError(where, f"must be a device number or -1 (any), not {v!r}")
    return v


def parse(rules, field=FIELD):
    out = []
    if rules is None:
        return out
    if not isinstance(rules, list):
        raise ConfigError(field, "must be an array of device rules")
    for i, r in enumerate(rules):
        where = f"{field}[{i}]"
        if not isinstance(r, dict):
            raise ConfigError(where, "must be an object")
        allow = r.get("allow")
        if not isinstance(allow, bool):
            raise ConfigError(f"{where}.allow", "is required and must be true or false")
        typ = r.get("type") or "a"
        if typ not in ("a", "c", "b"):
            raise ConfigError(f"{where}.type", f"must be a, c or b, not {typ!r}")
        access = r.get("access")
        if access is None or access == "":
            access = "rwm"
        if not isinstance(access, str) or not access or set(access) - set("rwm") \
                or len(set(access)) != len(access):
            raise ConfigError(f"{where}.access", f"must be letters from 'rwm', not {access!r}")
        access = "".join(c for c in "rwm" if c in access)
        out.append(Rule(allow, typ, _num(r.get("major"), f"{where}.major"),
                        _num(r.get("minor"), f"{where}.minor"), access))
    return out


def effective(cfg_rules, linux_devices=()):
    """The full ordered rule list for a container (`linux_devices` adds none)."""
    rules = parse(cfg_rules)
    for t, mj, mn, acc in DEFAULT_ALLOWED:
        rules.append(Rule(True, t, mj, mn, acc))
    return rules


def allows(rules, typ, major, minor, acc):
    """Reference semantics, what the eBPF program computes: the default is allow (a
    new cgroup's), the last matching rule wins, a type-a rule matches everything; an
    allow rule matches when it covers every requested access, a deny rule when it
    covers any of them."""
    verdict = True
    for r in rules:
        if r.type == "a":
            verdict = r.allow
            continue
        if r.type != typ:
            continue
        if r.major is not None and r.major != major:
            continue
        if r.minor is not None and r.minor != minor:
            continue
        if (r.allow and set(acc) <= set(r.access)) or (not r.allow and set(acc) & set(r.access)):
            verdict = r.allow
    return verdict


def rules_for(res, field, linux_devices, update):
    """The device rules to apply for linux.resources.devices: on create the whole
    effective list; on update the given rules, then the config's own devices again."""
    if update:
        return parse(res["devices"], field) + effective([], linux_devices)
    return effective(res.get("devices"), linux_devices)
