"""Fixtures for the engine tests: real Docker, containerd and Podman drive ocirt.

Every daemon is this session's own (see harness.py): started here, pointed at the
working tree's ocirt (harness.OCIRT, i.e. .venv/bin/ocirt; OCIRT_BIN overrides it,
e.g. OCIRT_BIN=/usr/sbin/runc checks the harness itself), stopped and its files
removed at the end even when tests fail. The Debian packages the engines need are
installed on first use (tests/install-packages.sh).

* `session_dir`: one temporary directory under /tmp for everything.
* `rootfs_tar`: a busybox-static rootfs tarball (the image for docker/podman import).
* `containerd`: a containerd on its own socket (CRI off), shared by dockerd and ctr.
* `dockerd`: a dockerd on that containerd, namespace `<tag>-docker`, cgroup parent
  /<tag>-docker, ocirt registered by `ocirt install` as the "ocirt" runtime (and the
  default), --live-restore; the rootfs imported as image `ocirt-busybox`.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TAG = f"ocirt-e{os.getpid()}"


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="the engine tests run daemons as root (euid is not 0)")
        for item in items:
            if "engines" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def tag():
    return TAG


@pytest.fixture(scope="session")
def ocirt_bin():
    if not os.access(h.OCIRT, os.X_OK):
        pytest.fail(f"{h.OCIRT} is missing: run make (it writes the launcher) first")
    return h.OCIRT


@pytest.fixture(scope="session")
def is_ocirt(ocirt_bin):
    """False when OCIRT_BIN points at another runtime (the harness check with runc)."""
    r = subprocess.run([ocirt_bin, "--version"], capture_output=True, text=True)
    return r.stdout.startswith("ocirt")


@pytest.fixture(scope="session")
def session_dir():
    d = tempfile.mkdtemp(prefix="oe-", dir="/tmp")
    os.chmod(d, 0o755)
    had_run_containerd = os.path.exists("/run/containerd")
    yield d
    h.remove_tree(d)
    # containerd's shims keep their sockets in /run/containerd/s whatever the daemon's
    # state dir; take away what this session's runs made there if it was not there before.
    if not had_run_containerd:
        for sub in ("s", "fifo", "runc", ""):
            try:
                os.rmdir(os.path.join("/run/containerd", sub))
            except OSError:
                pass


@pytest.fixture(scope="session")
def rootfs_tar(session_dir):
    h.install_packages(["busybox-static"])
    path = os.path.join(session_dir, "rootfs.tar")
    h.rootfs_tar(path)
    return path


def _cleanup_cgroup(name):
    h.kill_pids(h.cgroup_pids(name))
    import time
    for _ in range(20):
        if not h.cgroup_pids(name):
            break
        time.sleep(0.1)
    h.remove_cgroups(name)


@pytest.fixture(scope="session")
def containerd(session_dir):
    h.install_packages(h.PACKAGES["containerd"])
    c = h.Containerd(os.path.join(session_dir, "c"))
    try:
        yield c
    finally:
        c.stop()
        for ns in (f"{TAG}-docker", f"{TAG}-ctr"):
            shutil.rmtree(f"/run/containerd/runc/{ns}", ignore_errors=True)


@pytest.fixture(scope="session")
def dockerd(session_dir, containerd, ocirt_bin, rootfs_tar):
    h.install_packages(h.PACKAGES["docker"])
    # Belt and braces: dockerd 20.10 makes /etc/docker/key.json unless daemon.json's
    # deprecated-key-path says otherwise (it does, below); if one appears anyway while
    # only our dockerd runs, it is ours: removed at the end.
    key = "/etc/docker/key.json"
    had_key = os.path.exists(key)
    base = os.path.join(session_dir, "d")
    os.makedirs(base)
    cfg = os.path.join(base, "daemon.json")
    # dockerd 20.10 writes its trust key to /etc/docker/key.json unless told otherwise.
    with open(cfg, "w") as f:
        f.write('{"deprecated-key-path": "%s/key.json", "live-restore": true}\n' % base)
    h.run([h.OCIRT_CLI, "install", "--config", cfg, "--path", ocirt_bin, "--default"])
    d = h.Dockerd(base, containerd, f"{TAG}-docker", f"/{TAG}-docker")
    try:
        d.start()
        d.docker("import", "-c", 'CMD ["/bin/sh"]', rootfs_tar, "ocirt-busybox")
        yield d
    finally:
        try:
            if d.daemon and d.daemon.alive():
                ids = d.docker("ps", "-aq", check=False, timeout=30).stdout.split()
                if ids:
                    d.docker("rm", "-f", *ids, check=False, timeout=120)
        finally:
            d.stop()
            _cleanup_cgroup(f"{TAG}-docker")
            if not had_key and os.path.exists(key):
                os.unlink(key)
