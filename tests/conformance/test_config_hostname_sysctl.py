"""config.md Hostname and Domainname; config-linux.md Sysctl: really set in the
container (read inside), never on the host."""
import socket

import pytest

from helpers import assert_error, set_namespaces


def _host(path):
    with open(path) as f:
        return f.read().strip()


def test_hostname(ocirt, bundle):
    before = socket.gethostname()
    bundle.config["hostname"] = "octest-host"
    r = ocirt.run_sh(bundle, "hostname; cat /proc/sys/kernel/hostname; uname -n")
    assert r.ok().lines == ["octest-host"] * 3
    assert socket.gethostname() == before


def test_domainname(ocirt, bundle):
    before = _host("/proc/sys/kernel/domainname")
    bundle.config["domainname"] = "example.org"
    r = ocirt.run_sh(bundle, "cat /proc/sys/kernel/domainname")
    assert r.ok().stdout == "example.org\n"
    assert _host("/proc/sys/kernel/domainname") == before


def test_hostname_unset_keeps_new_uts_namespace_name(ocirt, bundle):
    """No hostname: a new uts namespace starts with the runtime's name, unchanged."""
    bundle.config.pop("hostname", None)
    r = ocirt.run_sh(bundle, "hostname")
    assert r.ok().stdout.strip() == socket.gethostname()


def test_hostname_without_uts_namespace_is_refused(ocirt, bundle):
    """Setting it would rename the host: refused, naming the field."""
    set_namespaces(bundle.config, ["pid", "network", "ipc", "mount", "cgroup"])
    bundle.config["hostname"] = "must-not-reach-host"
    bundle.write()
    assert_error(ocirt.create(ocirt.new_id(), bundle), "hostname")
    assert socket.gethostname() != "must-not-reach-host"
    assert ocirt.state_dirs() == []


SYSCTLS = [
    ("net.ipv4.ip_forward", "0", "net/ipv4/ip_forward"),
    ("net.ipv4.conf.lo.rp_filter", "2", "net/ipv4/conf/lo/rp_filter"),
    ("kernel.shmmni", "1000", "kernel/shmmni"),
    ("kernel.msgmax", "4096", "kernel/msgmax"),
    ("fs.mqueue.msg_max", "20", "fs/mqueue/msg_max"),
]


@pytest.fixture(scope="module")
def sysctl_run(module_ocirt):
    """One container setting every sysctl of SYSCTLS; (host values before, inside)."""
    before = {key: _host(f"/proc/sys/{path}") for key, _v, path in SYSCTLS}
    b = module_ocirt.bundle()
    b.linux["sysctl"] = {key: value for key, value, _p in SYSCTLS}
    r = module_ocirt.run_sh(b, "; ".join(f"echo {key}=$(cat /proc/sys/{path})"
                                         for key, _v, path in SYSCTLS)).ok()
    return before, dict(line.split("=", 1) for line in r.lines)


@pytest.mark.parametrize("key,value,path", SYSCTLS)
def test_sysctl_set_inside_only(sysctl_run, key, value, path):
    before, inside = sysctl_run
    assert inside[key] == value
    assert _host(f"/proc/sys/{path}") == before[key]


def test_sysctl_several(ocirt, bundle):
    bundle.linux["sysctl"] = {"net.ipv4.ip_forward": "0", "kernel.shmmni": "1234"}
    r = ocirt.run_sh(bundle, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni")
    assert r.ok().lines == ["0", "1234"]


def test_sysctl_not_namespaced_is_refused(ocirt, bundle):
    before = _host("/proc/sys/vm/swappiness")
    bundle.linux["sysctl"] = {"vm.swappiness": "7"}
    bundle.write()
    assert_error(ocirt.create(ocirt.new_id(), bundle), "linux.sysctl", "vm.swappiness")
    assert _host("/proc/sys/vm/swappiness") == before


def test_sysctl_of_inherited_namespace_is_refused(ocirt, bundle):
    """net.* without a network namespace would set the host's value."""
    set_namespaces(bundle.config, ["pid", "ipc", "uts", "mount", "cgroup"])
    bundle.linux["sysctl"] = {"net.ipv4.ip_forward": "0"}
    bundle.write()
    assert_error(ocirt.create(ocirt.new_id(), bundle), "linux.sysctl", "net.ipv4.ip_forward")


def test_sysctl_unknown_key_is_an_error(ocirt, bundle):
    bundle.linux["sysctl"] = {"net.ipv4.no_such_knob": "1"}
    bundle.write()
    assert_error(ocirt.create(ocirt.new_id(), bundle), "linux.sysctl", "no_such_knob")
    assert ocirt.state_dirs() == []


def test_hostname_in_joined_uts_namespace(ocirt, bundle):
    """A uts namespace joined by path is the container's: hostname is set there
    (as runc does), and the host's name is untouched."""
    import subprocess

    from helpers import Holder
    h = Holder("--uts")
    try:
        set_namespaces(bundle.config, ["pid", "network", "ipc", ("uts", h.path("uts")),
                                       "mount", "cgroup"])
        bundle.config["hostname"] = "joined-host"
        r = ocirt.run_sh(bundle, "hostname")
        assert r.ok().stdout == "joined-host\n"
        out = subprocess.run(["nsenter", "-t", str(h.pid), "-u", "hostname"],
                             capture_output=True, text=True, check=True).stdout
        assert out == "joined-host\n"
        assert socket.gethostname() != "joined-host"
    finally:
        h.close()
