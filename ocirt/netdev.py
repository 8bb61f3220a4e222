"""linux.netDevices (runtime-spec 1.3): host network devices moved into the
container's network namespace, renamed when an entry gives a `name`.

check() runs in the parent before any process exists and needs no netlink: every
refusal names linux.netDevices.<host name>. Mover.move() runs in the create process
once init's namespaces exist (before any hook and before the container process):
each device goes over in one RTM_NEWLINK (namespace and name together), gets back
its permanent global addresses (a move drops every address; MTU and MAC stay) and
is set up, as the spec asks. A failure midway, or a later failure of create, moves
back what was moved (rollback()): an error leaves the host as it was.

`delete` does nothing here: the spec says the runtime MUST NOT move a device out
before the namespace goes; the kernel then returns physical devices to the initial
namespace and destroys virtual ones (veth, macvlan...). A namespace joined by path
keeps its devices (its owner manages them).

pyroute2 is imported by Mover only: a config without netDevices never loads it.
"""
import os
import _socket as socket

from .errors import ConfigError
from . import syscalls as sc
from .lazy import netlink_exceptions, pyroute2

FIELD = "linux.netDevices"
_IFNAMSIZ = 16  # with the NUL: at most 15 bytes
_IFF_UP = 0x1
_IFA_F_PERMANENT = 0x80
_RT_SCOPE_UNIVERSE = 0
# what the user set and the kernel takes back: nodad, homeaddress, mngtmpaddr,
# noprefixroute (the rest is state: tentative, deprecated...)
_IFA_KEPT_FLAGS = 0x02 | 0x10 | 0x100 | 0x200
_WHITESPACE = " \t\n\v\f\r"


def _where(host):
    """The field path of an entry, on one printable line whatever the key holds."""
    if not host.isprintable():
        host = host.encode("unicode_escape").decode()
    return f"{FIELD}.{host}"


def _name_problem(name):
    """Why the kernel would refuse `name` as an interface name (dev_valid_name), or None."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if len(name.encode()) >= _IFNAMSIZ:
        return f"longer than {_IFNAMSIZ - 1} bytes"
    if name in (".", ".."):
        return "'.' and '..' are not interface names"
    bad = [c for c in "/:" + _WHITESPACE if c in name]
    if bad:
        return f"it contains {bad[0]!r}"
    return None


def _template_problem(name):
    """A `%` in a container name must be one `%d` (the kernel picks the number)."""
    i = name.find("%")
    if i < 0:
        return None
    if name[i + 1:i + 2] != "d" or "%" in name[i + 2:]:
        return "a template needs exactly one '%d' and no other '%'"
    return None


def _names_in(ns_path):
    """The interface names (not the alternative ones) in the network namespace at
    `ns_path`: this thread visits it for the time of one ioctl."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(fd, sc.CLONE_NEWNET)
        finally:
            os.close(fd)
        try:
            return {n for _, n in socket.if_nameindex()}
        finally:
            sc.setns(own, sc.CLONE_NEWNET)
    finally:
        os.close(own)


def _same_ns(path, other="/proc/thread-self/ns/net"):
    a, b = os.stat(path), os.stat(other)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check(cfg, rootless):
    """Refuse what cannot be moved, before anything exists; return the plan:
    [(host name as configured, host ifindex, its name on the host, container name
    or None to keep it)] in config order, and the joined namespace path or None."""
    devices = (cfg.get("linux") or {}).get("netDevices") or {}
    if not devices:
        return [], None
    first = _where(next(iter(devices)))
    nets = [n for n in (cfg.get("linux") or {}).get("namespaces") or []
            if n.get("type") == "network"]
    if not nets:
        raise ConfigError(first, "moving a network device needs a network namespace of "
                          "the container's own (linux.namespaces has no network entry)")
    ns_path = nets[-1].get("path") or None
    if ns_path and _same_ns(ns_path):
        raise ConfigError(first, f"the network namespace {ns_path} is the runtime's own: "
                          "there is nowhere to move the device")
    if rootless:
        raise ConfigError(first, "network devices are not supported for rootless "
                          "containers (moving one needs CAP_NET_ADMIN on the host)")
    try:
        inside = _names_in(ns_path) if ns_path else {"lo"}  # a new one has lo alone
    except OSError as e:
        raise ConfigError(first, f"cannot look into the network namespace {ns_path}: "
                          f"{e.strerror}") from None
    plan, targets, seen = [], {}, {}
    for host, dev in devices.items():
        where = _where(host)
        why = _name_problem(host) or ("'%' is not in a host device's name"
                                      if "%" in host else None)
        if why:
            raise ConfigError(where, f"invalid network device name {host!r}: {why}")
        new = dev.get("name")
        if new is not None:
            why = _name_problem(new) or _template_problem(new)
            if why:
                raise ConfigError(f"{where}.name", f"invalid network device name {new!r}: "
                                  f"{why}")
        try:
            index = socket.if_nametoindex(host)
            primary = socket.if_indextoname(index)  # `host` may be an alternative name
        except OSError:
            raise ConfigError(where, f"there is no network device {host!r} in the "
                              "runtime's network namespace") from None
        if index in seen:
            raise ConfigError(where, f"{host!r} is the same device as "
                              f"{_where(seen[index])}")
        seen[index] = host
        if primary == "lo":
            raise ConfigError(where, "the loopback device cannot leave its namespace")
        target = new if new is not None else primary
        if "%" not in target:
            if target in targets:
                raise ConfigError(where, f"two devices would be named {target!r} in the "
                                  f"container (and {_where(targets[target])})")
            if target in inside:
                raise ConfigError(where, f"a network device named {target!r} already "
                                  "exists in the container's network namespace")
            targets[target] = host
        plan.append((host, index, primary, new))
    return plan, ns_path


class Mover:
    """The moves of one create: move(init_pid) once, rollback() on a later failure,
    close() when create succeeded. record() is what state.json keeps."""

    def __init__(self, plan, ns_path):
        self.plan = plan
        self.ns_path = ns_path
        self.moved = []  # (host, primary, host flags, [addresses], container ifindex, name)
        self.host_fd = self.ns_fd = None

    def move(self, init_pid):
        self.host_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        # held until create is over: a rollback can reach the namespace even once
        # init is dead (and the devices in it are not destroyed meanwhile)
        self.ns_fd = os.open(f"/proc/{init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        host = inside = current = None
        try:
            host = pyroute2.IPRoute()
            inside = _ipr_in(self.ns_fd, pyroute2.IPRoute)
            for current, index, primary, new in self.plan:
                flags = host.link("get", index=index)[0]["flags"]
                addrs = [_addr_args(a) for a in host.get_addr(index=index) if _keep(a)]
                before = {m["index"] for m in inside.get_links()}
                req = {"index": index, "net_ns_fd": self.ns_fd}
                if new is not None:
                    req["ifname"] = new  # in the same message: no clash on either side
                host.link("set", **req)
                got = [m for m in inside.get_links() if m["index"] not in before]
                if len(got) != 1:
                    raise OSError(0, "the device did not show up in the container's "
                                  "network namespace")
                cidx, name = got[0]["index"], got[0].get_attr("IFLA_IFNAME")
                self.moved.append((current, primary, flags, addrs, cidx, name))
                for a in addrs:
                    inside.addr("add", index=cidx, **a)
                inside.link("set", index=cidx, state="up")
        except BaseException as e:
            self._close_sockets(host, inside)
            host = inside = None
            self.rollback()
            if isinstance(e, netlink_exceptions.NetlinkError):
                why = os.strerror(e.code)
            elif isinstance(e, OSError):
                why = e.strerror or str(e)
            else:
                raise
            if why == os.strerror(22):  # EINVAL from the move itself
                why += " (the kernel keeps some devices in their namespace: bridges...)"
            raise ConfigError(_where(current) if current else FIELD,
                              f"cannot move the device into the container's network "
                              f"namespace: {why}") from None
        finally:
            self._close_sockets(host, inside)

    @staticmethod
    def _close_sockets(*iprs):
        for i in iprs:
            if i is not None:
                i.close()

    def record(self):
        return {h: {"name": name, "netns": self.ns_path}
                for h, _, _, _, _, name in self.moved}

    def rollback(self):
        """Back to the runtime's namespace with the host name, addresses and up/down
        state each had; best effort (the create is failing already)."""
        if self.ns_fd is None or not self.moved:
            self.close()
            return
        host = inside = None
        try:
            host = pyroute2.IPRoute()
            inside = _ipr_in(self.ns_fd, pyroute2.IPRoute)
            for _, primary, flags, addrs, cidx, _ in reversed(self.moved):
                try:
                    inside.link("set", index=cidx, state="down")
                    before = {m["index"] for m in host.get_links()}
                    inside.link("set", index=cidx, net_ns_fd=self.host_fd, ifname=primary)
                    got = [m["index"] for m in host.get_links() if m["index"] not in before]
                    for idx in got[:1]:
                        for a in addrs:
                            host.addr("add", index=idx, **a)
                        if flags & _IFF_UP:
                            host.link("set", index=idx, state="up")
                except (netlink_exceptions.NetlinkError, OSError):
                    pass
            self.moved = []
        except (netlink_exceptions.NetlinkError, OSError):
            pass
        finally:
            self._close_sockets(host, inside)
            self.close()

    def close(self):
        for fd in (self.host_fd, self.ns_fd):
            if fd is not None:
                os.close(fd)
        self.host_fd = self.ns_fd = None


def _ipr_in(ns_fd, IPRoute):
    """An IPRoute whose socket lives in the namespace `ns_fd` (a socket keeps the
    namespace it was made in): this thread visits it for the socket's creation."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(ns_fd, sc.CLONE_NEWNET)
        try:
            return IPRoute()
        finally:
            sc.setns(own, sc.CLONE_NEWNET)
    finally:
        os.close(own)


def _keep(a):
    """The spec's rule: permanent addresses of global scope, any family."""
    flags = a.get_attr("IFA_FLAGS")
    flags = a["flags"] if flags is None else flags
    return bool(flags & _IFA_F_PERMANENT) and a["scope"] == _RT_SCOPE_UNIVERSE


def _addr_args(a):
    out = {"address": a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS"),
           "prefixlen": a["prefixlen"], "family": a["family"]}
    peer = a.get_attr("IFA_ADDRESS")
    if a.get_attr("IFA_LOCAL") and peer and peer != out["address"]:
        out["local"], out["address"] = out["address"], peer  # point-to-point
    brd = a.get_attr("IFA_BROADCAST")
    if brd:
        out["broadcast"] = brd
    flags = (a.get_attr("IFA_FLAGS") or a["flags"]) & _IFA_KEPT_FLAGS
    if flags:
        out["flags"] = flags
    return out
