"""linux.netDevices (runtime-spec 1.3): a host device moved into the container's
network namespace before its process runs, renamed when asked, with its MTU, MAC and
permanent global addresses, set up; gone from the host meanwhile; on delete left to
the kernel (the spec forbids moving it out: a virtual device dies with the namespace,
one in a namespace joined by path stays there); every refusal names its field before
anything moves, and a failure midway puts back what was moved.

Devices are veth pairs (the kernel here may lack dummy) named with the test's marker,
addresses from 192.0.2.0/24 and 2001:db8::/32; the fixture always removes them."""
import json
import os
import subprocess
import sys
import uuid

import pytest

from helpers import REPO, add_userns, assert_error, set_namespaces, wait_for

MTU = 1789
V4 = "192.0.2.77"
V6 = "2001:db8::77"


def ip(*args, check=True):
    p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and p.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {p.stderr.strip()}")
    return p


def link(name, netns_of=None):
    """`ip -j addr show dev name` as a dict (in the net namespace of pid `netns_of`),
    or None when there is no such device."""
    argv = ["ip", "-j", "addr", "show", "dev", name]
    if netns_of is not None:
        argv = ["nsenter", f"--net=/proc/{netns_of}/ns/net", *argv]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)[0]


def addrs(info):
    return sorted(f"{a['local']}/{a['prefixlen']}" for a in info.get("addr_info", [])
                  if a.get("scope") == "global")


def essentials(info):
    """What a move must keep (the ifindex may change; a rollback keeps the rest)."""
    return {"ifname": info["ifname"], "mtu": info["mtu"], "address": info["address"],
            "up": "UP" in info["flags"], "addrs": addrs(info)}


class Veths:
    """veth pairs made for one test: host end configured, peer left on the host."""

    def __init__(self):
        self.marker = uuid.uuid4().hex[:6]
        self.made = []
        self.netns = []

    def make(self, up=True):
        n = len(self.made)
        host, peer = f"zn{self.marker}{n}h", f"zn{self.marker}{n}p"
        p = ip("link", "add", host, "type", "veth", "peer", "name", peer, check=False)
        if p.returncode != 0:
            pytest.skip(f"the kernel cannot make a veth pair (CONFIG_VETH): {p.stderr.strip()}")
        self.made.append((host, peer))
        ip("link", "set", host, "mtu", str(MTU), "address", f"02:00:5e:{self.marker[:2]}:"
           f"{self.marker[2:4]}:{n:02x}")
        ip("addr", "add", f"{V4}/24", "dev", host)
        ip("-6", "addr", "add", f"{V6}/64", "dev", host, "nodad")
        if up:
            ip("link", "set", host, "up")
        return host, peer

    def new_netns(self):
        name = f"zn{self.marker}ns{len(self.netns)}"
        ip("netns", "add", name)
        self.netns.append(name)
        return name, f"/run/netns/{name}"

    def cleanup(self):
        for host, peer in self.made:
            for name in (host, peer):
                ip("link", "del", name, check=False)
        for name in self.netns:
            ip("netns", "del", name, check=False)


@pytest.fixture
def veths():
    v = Veths()
    try:
        yield v
    finally:
        v.cleanup()


def ctr_name(veths, n=0):
    return f"ct{veths.marker}{n}"


def test_moved_renamed_and_kept_then_left_to_the_kernel(ocirt, bundle, veths):
    host, peer = veths.make()
    before = essentials(link(host))
    inner = ctr_name(veths)
    bundle.linux["netDevices"] = {host: {"name": inner}}
    bundle.args("sleep", "600").write()
    cid = ocirt.new_id()
    ocirt.create(cid, bundle).ok()
    pid = ocirt.state(cid)["pid"]
    assert link(host) is None, "the device is still on the host"
    got = essentials(link(inner, netns_of=pid))
    assert got == dict(before, ifname=inner, up=True)
    assert sorted(addrs(link(inner, netns_of=pid))) == sorted([f"{V4}/24", f"{V6}/64"])
    # the container's process sees it (its sysfs is of its own network namespace)
    ocirt.start(cid).ok()
    r = ocirt("exec", cid, "sh", "-c", f"cat /sys/class/net/{inner}/mtu "
              f"/sys/class/net/{inner}/address; ls /sys/class/net").ok()
    mtu, mac, *names = r.stdout.split()
    assert (int(mtu), mac) == (MTU, before["address"])
    assert sorted(names) == sorted(["lo", inner])
    st = json.load(open(os.path.join(ocirt.root, cid, "state.json")))
    assert st["ocirt"]["netdevices"] == {host: {"name": inner, "netns": None}}
    ocirt.delete(cid, "--force").ok()
    # the spec: not moved out; a virtual device is destroyed with the namespace (a
    # veth takes its peer along); the host never gets `inner`
    wait_for(lambda: link(peer) is None, timeout=10, what="the veth to go with the netns")
    assert link(host) is None and link(inner) is None


def test_name_kept_without_name_and_run_sees_it(ocirt, bundle, veths):
    host, _ = veths.make(up=False)  # down on the host: the spec sets it up
    bundle.linux["netDevices"] = {host: {}}
    r = ocirt.run_sh(bundle, f"ip -o addr show dev {host}; ip -o link show dev {host}")
    out = r.ok().stdout
    assert f"inet {V4}/24" in out and f"inet6 {V6}/64" in out
    assert f"mtu {MTU}" in out and ",UP" in out
    wait_for(lambda: link(host) is None, timeout=10, what="the device to go")


def test_joined_netns_keeps_the_device(ocirt, bundle, veths):
    host, _ = veths.make()
    name, path = veths.new_netns()
    inner = ctr_name(veths)
    set_namespaces(bundle.config, ["pid", "mount", "ipc", "uts", ("network", path)])
    bundle.linux["netDevices"] = {host: {"name": inner}}
    r = ocirt.run_sh(bundle, f"cat /sys/class/net/{inner}/mtu")
    assert r.ok().stdout.strip() == str(MTU)
    # the namespace's owner manages the device: still there after the container
    info = json.loads(ip("-n", name, "-j", "addr", "show", "dev", inner).stdout)[0]
    assert info["mtu"] == MTU and f"{V4}/24" in addrs(info)
    assert link(host) is None


def test_template_name(ocirt, bundle, veths):
    host, _ = veths.make()
    bundle.linux["netDevices"] = {host: {"name": "eth%d"}}
    r = ocirt.run_sh(bundle, "ls /sys/class/net")
    assert sorted(r.ok().stdout.split()) == ["eth0", "lo"]


def test_swapped_names(ocirt, bundle, veths):
    a, _ = veths.make()
    b, _ = veths.make()
    bundle.linux["netDevices"] = {a: {"name": b}, b: {"name": a}}
    r = ocirt.run_sh(bundle, f"cat /sys/class/net/{a}/address /sys/class/net/{b}/address")
    assert r.ok().stdout.split() == [f"02:00:5e:{veths.marker[:2]}:{veths.marker[2:4]}:01",
                                     f"02:00:5e:{veths.marker[:2]}:{veths.marker[2:4]}:00"]


def test_failure_midway_moves_back(ocirt, bundle, veths):
    host, _ = veths.make()
    before = essentials(link(host))
    bridge = f"zn{veths.marker}br"
    p = ip("link", "add", bridge, "type", "bridge", check=False)
    if p.returncode != 0:
        pytest.skip(f"the kernel cannot make a bridge (CONFIG_BRIDGE): {p.stderr.strip()}")
    veths.made.append((bridge, bridge))
    # a bridge is netns-local: the kernel refuses to move it, after `host` went over
    bundle.linux["netDevices"] = {host: {"name": ctr_name(veths)}, bridge: {}}
    bundle.write()
    assert_error(ocirt.run(ocirt.new_id(), bundle), f"linux.netDevices.{bridge}")
    assert essentials(link(host)) == before
    assert link(bridge) is not None
    assert ocirt.state_dirs() == []


def test_later_failure_of_create_moves_back(ocirt, bundle, veths):
    host, _ = veths.make()
    before = essentials(link(host))
    bundle.linux["netDevices"] = {host: {"name": ctr_name(veths)}}
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    bundle.write()
    r = ocirt.run(ocirt.new_id(), bundle)
    assert r.returncode == 1, r
    assert essentials(link(host)) == before
    assert ocirt.state_dirs() == []


def _refusal(ocirt, bundle, veths, devices, field, words, namespaces=None):
    if namespaces is not None:
        set_namespaces(bundle.config, namespaces)
    bundle.linux["netDevices"] = devices
    bundle.write()
    before = [essentials(link(h)) for h, _ in veths.made]
    assert_error(ocirt.run(ocirt.new_id(), bundle), field, words)
    assert [essentials(link(h)) for h, _ in veths.made] == before
    assert ocirt.state_dirs() == []


def test_refuses_a_missing_device(ocirt, bundle, veths):
    host, _ = veths.make()
    gone = f"zn{veths.marker}xx"
    _refusal(ocirt, bundle, veths, {host: {}, gone: {}}, f"linux.netDevices.{gone}",
             "no network device")


def test_refuses_a_name_collision(ocirt, bundle, veths):
    a, _ = veths.make()
    b, _ = veths.make()
    _refusal(ocirt, bundle, veths, {a: {"name": "same0"}, b: {"name": "same0"}},
             f"linux.netDevices.{b}", "two devices would be named 'same0'")


def test_refuses_a_collision_with_unrenamed(ocirt, bundle, veths):
    a, _ = veths.make()
    b, _ = veths.make()
    _refusal(ocirt, bundle, veths, {a: {}, b: {"name": a}}, f"linux.netDevices.{b}",
             "two devices")


def test_refuses_lo_inside(ocirt, bundle, veths):
    a, _ = veths.make()
    _refusal(ocirt, bundle, veths, {a: {"name": "lo"}}, f"linux.netDevices.{a}",
             "already exists in the container's network namespace")


def test_refuses_a_name_taken_in_the_joined_netns(ocirt, bundle, veths):
    a, _ = veths.make()
    name, path = veths.new_netns()
    ip("-n", name, "link", "add", "taken0", "type", "veth", "peer", "name", "taken1")
    _refusal(ocirt, bundle, veths, {a: {"name": "taken1"}}, f"linux.netDevices.{a}",
             "already exists", namespaces=["pid", "mount", "uts", ("network", path)])


def test_refuses_the_loopback(ocirt, bundle, veths):
    veths.make()
    _refusal(ocirt, bundle, veths, {"lo": {"name": f"zn{veths.marker}lo"}},
             "linux.netDevices.lo", "loopback")


def test_refuses_without_a_network_namespace(ocirt, bundle, veths):
    a, _ = veths.make()
    _refusal(ocirt, bundle, veths, {a: {}}, f"linux.netDevices.{a}", "network namespace",
             namespaces=["pid", "mount", "ipc", "uts"])


def test_refuses_the_runtimes_own_netns(ocirt, bundle, veths):
    a, _ = veths.make()
    _refusal(ocirt, bundle, veths, {a: {}}, f"linux.netDevices.{a}", "the runtime's own",
             namespaces=["pid", "mount", "uts", ("network", f"/proc/{os.getpid()}/ns/net")])


def test_refuses_rootless(ocirt, bundle, veths):
    a, _ = veths.make()
    bundle.config["mounts"] = [m for m in bundle.config["mounts"]
                               if m.get("type") != "cgroup"]
    bundle.linux.pop("resources", None)
    bundle.linux["netDevices"] = {a: {}}
    bundle.write()
    before = essentials(link(a))
    r = ocirt.run(ocirt.new_id(), bundle, global_flags=("--rootless", "true"))
    assert_error(r, f"linux.netDevices.{a}", "rootless")
    assert essentials(link(a)) == before
    assert ocirt.state_dirs() == []


def test_refuses_an_alternative_name_of_the_same_device(ocirt, bundle, veths):
    a, _ = veths.make()
    alt = f"zn{veths.marker}alt"
    p = ip("link", "property", "add", "dev", a, "altname", alt, check=False)
    if p.returncode != 0:
        pytest.skip(f"the kernel has no alternative interface names (5.5+): {p.stderr}")
    _refusal(ocirt, bundle, veths, {a: {}, alt: {"name": "other0"}},
             f"linux.netDevices.{alt}", "the same device")


@pytest.mark.parametrize("host,name,field,words", [
    ("a/b", None, "linux.netDevices.a/b", "invalid network device name"),
    ("", None, "linux.netDevices.:", "invalid network device name"),
    (".", None, "linux.netDevices..", "invalid network device name"),
    ("x" * 16, None, "linux.netDevices." + "x" * 16, "longer than 15"),
    ("a b", None, "linux.netDevices.a b", "invalid network device name"),
    ("e%d", None, "linux.netDevices.e%d", "invalid network device name"),
    ("HOST", "", "linux.netDevices.HOST.name", "it is empty"),
    ("HOST", "..", "linux.netDevices.HOST.name", "invalid network device name"),
    ("HOST", "a:b", "linux.netDevices.HOST.name", "invalid network device name"),
    ("HOST", "tab\there", "linux.netDevices.HOST.name", "invalid network device name"),
    ("HOST", "new/1", "linux.netDevices.HOST.name", "invalid network device name"),
    ("HOST", "y" * 16, "linux.netDevices.HOST.name", "longer than 15"),
    ("HOST", "e%s", "linux.netDevices.HOST.name", "'%d'"),
    ("HOST", "e%d%d", "linux.netDevices.HOST.name", "'%d'"),
])
def test_refuses_invalid_names(ocirt, bundle, veths, host, name, field, words):
    real, _ = veths.make()
    host = real if host == "HOST" else host
    field = field.replace("HOST", real)
    _refusal(ocirt, bundle, veths, {host: {} if name is None else {"name": name}},
             field, words)


def test_plain_run_does_not_import_pyroute2(ocirt, bundle, veths):
    """The netlink library is loaded for a config with netDevices only."""
    def imports(b):
        argv = [sys.executable, "-X", "importtime", "-m", "ocirt", "--root", ocirt.root,
                "run", "--bundle", b.path, ocirt.new_id()]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                           env=ocirt.env(), cwd=REPO)
        assert p.returncode == 0, p.stderr[-2000:]
        return p.stderr
    assert "pyroute2" not in imports(bundle)
    host, _ = veths.make()
    bundle.linux["netDevices"] = {host: {}}
    bundle.write()
    assert "pyroute2" in imports(bundle)


def test_moved_before_the_hooks(ocirt, bundle, veths):
    """createRuntime (in the runtime's namespaces, given init's pid) and
    createContainer (in the container's) hooks already see the device."""
    host, _ = veths.make()
    inner = ctr_name(veths)
    out = os.path.join(bundle.path, "hooks.out")
    runtime = (f"pid=$(sed 's/.*\"pid\": *\\([0-9]*\\).*/\\1/'); "
               f"nsenter --net=/proc/$pid/ns/net ip -o link show dev {inner} >> {out}")
    container = f"ip -o link show dev {inner} >> {out}"
    bundle.linux["netDevices"] = {host: {"name": inner}}
    bundle.config["hooks"] = {
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", runtime]}],
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", container]}]}
    bundle.write()
    ocirt.run(ocirt.new_id(), bundle).ok()
    with open(out) as f:
        lines = f.read().splitlines()
    assert len(lines) == 2 and all(f": {inner}" in ln for ln in lines), lines


def test_with_a_user_namespace(ocirt, bundle, veths):
    host, _ = veths.make()
    inner = ctr_name(veths)
    add_userns(bundle)
    bundle.linux["netDevices"] = {host: {"name": inner}}
    r = ocirt.run_sh(bundle, f"ip -o addr show dev {inner}")
    assert f"inet {V4}/24" in r.ok().stdout
