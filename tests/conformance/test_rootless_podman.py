"""Rootless Podman with ocirt as its runtime, as an unprivileged user the test makes.

Rootless Podman runs the runtime inside its own user namespace (made with
newuidmap/newgidmap from the user's /etc/subuid and /etc/subgid ranges), with a
config that has no user namespace: ocirt must see that it is rootless (--rootless
auto), keep its state under $XDG_RUNTIME_DIR, bind-mount devices, and run
without a cgroup when the user has none delegated.

Everything Podman keeps is private to the test: containers.conf (cgroupfs
manager, file events, default_ulimits = [] since this machine lacks
CAP_SYS_RESOURCE to raise them), storage.conf (vfs under the user's work dir),
XDG_CONFIG_HOME / XDG_DATA_HOME / HOME. The user, its processes (Podman's pause
process too) and its files go at the end.
"""
import os
import subprocess

import pytest

import helpers
from helpers import OCIRT
from rootless_user import RootlessUser

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
IMAGE = "localhost/ocirt-rl-busybox:test"
PACKAGES = ["podman", "uidmap", "slirp4netns"]


def _install():
    r = subprocess.run(["sh", os.path.join(REPO, "tests", "install-packages.sh"), *PACKAGES],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        pytest.skip(f"cannot install {' '.join(PACKAGES)}: {r.stderr.strip()[-300:]}")


def _rootfs_tar(path, uid, gid):
    helpers.busybox_rootfs.tar(path)
    os.chown(path, uid, gid)


class RootlessPodman:
    def __init__(self, user):
        self.user = user
        self.base = os.path.join(user.work, "podman")
        os.mkdir(self.base, 0o700)
        for sub in ("home", "config", "data", "storage", "run"):
            os.mkdir(os.path.join(self.base, sub), 0o700)
        with open(os.path.join(self.base, "containers.conf"), "w") as f:
            f.write('[containers]\n'
                    '# CAP_SYS_RESOURCE is missing here: no raised nofile/nproc defaults\n'
                    'default_ulimits = []\n'
                    '# no network: slirp4netns needs /dev/net/tun 0666, which this host has 0600\n'
                    'netns = "none"\n'
                    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    f'runtime = "ocirt"\n[engine.runtimes]\nocirt = ["{OCIRT}"]\n')
        with open(os.path.join(self.base, "storage.conf"), "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{self.base}/storage"\n'
                    f'runroot = "{self.base}/run"\n')
        user.chown_tree(self.base)
        self.env = {"HOME": f"{self.base}/home", "XDG_CONFIG_HOME": f"{self.base}/config",
                    "XDG_DATA_HOME": f"{self.base}/data",
                    "CONTAINERS_CONF": f"{self.base}/containers.conf",
                    "CONTAINERS_STORAGE_CONF": f"{self.base}/storage.conf"}

    def __call__(self, *args, timeout=180, check=True):
        r = self.user.run(["podman", "--runtime", OCIRT, *args], env=self.env,
                          timeout=timeout, cwd=self.base)
        if check:
            assert r.returncode == 0, f"podman {' '.join(args)} failed ({r.returncode}):\n" \
                                      f"{r.stdout}\n{r.stderr}"
        return r

    def cleanup(self):
        for args in (("rm", "-af", "-t", "0"), ("rmi", "-af")):
            try:
                self(*args, check=False, timeout=120)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture(scope="module")
def podman():
    _install()
    user = RootlessUser.create()
    try:
        why = user.check_launcher()
        if why:
            pytest.skip(why)
        p = RootlessPodman(user)
        try:
            tar = os.path.join(user.work, "rootfs.tar")
            _rootfs_tar(tar, user.uid, user.gid)
            p("import", tar, IMAGE)
            yield p
        finally:
            p.cleanup()
    finally:
        user.close()


def test_podman_run(podman):
    u = podman.user
    r = podman("run", "--rm", IMAGE, "sh", "-c",
               "id -u; cat /proc/self/uid_map; test -c /dev/null && echo dev-ok; echo hello")
    out = r.stdout.split()
    assert out[0] == "0", r
    # Podman's namespace: the user as 0, the subordinate range above
    assert out[1:7] == ["0", str(u.uid), "1", "1", str(u.subuid[0]), str(u.subuid[1])], r
    assert out[-2:] == ["dev-ok", "hello"], r


def test_podman_exit_status_and_user(podman):
    assert podman("run", "--rm", IMAGE, "sh", "-c", "exit 3", check=False).returncode == 3
    r = podman("run", "--rm", "--user", "1000:1000", IMAGE, "sh", "-c", "id -u; id -g")
    assert r.stdout.split() == ["1000", "1000"], r


def test_podman_detached_exec_stop(podman):
    name = f"rl-{os.getpid()}"
    podman("run", "-d", "--name", name, IMAGE, "sleep", "600")
    try:
        r = podman("exec", name, "sh", "-c", "echo exec-ok; id -u")
        assert r.stdout.split() == ["exec-ok", "0"], r
        st = podman("inspect", "--format", "{{.State.Status}} {{.State.Pid}}", name)
        status, pid = st.stdout.split()
        assert status == "running"
        assert helpers.proc_status(int(pid))["Uid"].split()[0] == str(podman.user.uid)
        # ocirt keeps the state under the user's XDG_RUNTIME_DIR
        root = os.path.join(podman.user.runtime_dir, "ocirt")
        assert any(os.path.isdir(os.path.join(root, d)) for d in os.listdir(root)), root
        podman("stop", "-t", "2", name, timeout=120)
        st = podman("inspect", "--format", "{{.State.Status}}", name)
        assert st.stdout.strip() in ("exited", "stopped"), st
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)
    assert not [d for d in os.listdir(os.path.join(podman.user.runtime_dir, "ocirt"))], \
        "podman rm deleted the ocirt state"
