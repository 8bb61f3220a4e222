"""Private engine daemons for the engine tests: containerd, dockerd and Podman's
files, each under one temporary directory, started and stopped by the tests.

Nothing here touches a daemon the machine may already run: every daemon gets its
own sockets, roots, state dirs, pid file and containerd namespace, and a config
file of its own (never /etc/docker/daemon.json or /etc/containerd/config.toml).
Cleanup ends only processes these fixtures started (by pid) and the shims and
container processes that are theirs (found by this session's unique containerd
socket path in the shim's command line, and by this session's cgroup parent), then
unmounts whatever is left under the session directory and removes it.
"""
import glob
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import busybox_rootfs  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The engines run the working tree's ocirt (the launcher `make` writes), not /usr/local/bin.
OCIRT_CLI = os.path.join(REPO, ".venv", "bin", "ocirt")
# The runtime the engines are pointed at: ocirt, unless OCIRT_BIN names another one
# (OCIRT_BIN=/usr/sbin/runc runs the same tests on runc, a check of the tests themselves).
OCIRT = os.environ.get("OCIRT_BIN", OCIRT_CLI)
# The Debian packages' binaries, by absolute path (a /usr/local/bin/docker client
# of another version may shadow /usr/bin/docker).
DOCKER = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"
CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"
PODMAN = "/usr/bin/podman"
CONMON = "/usr/bin/conmon"

PACKAGES = {
    "docker": ["docker.io", "containerd", "busybox-static"],
    "containerd": ["containerd", "busybox-static"],
    "podman": ["podman", "conmon", "busybox-static"],
    "cri": ["containerd", "python3-grpcio", "busybox-static"],
}


def install_packages(names):
    script = os.path.join(REPO, "tests", "install-packages.sh")
    r = subprocess.run(["sh", script] + list(names), capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"installing {' '.join(names)} failed: {r.stderr.strip()[-2000:]}")


def run(args, timeout=60, check=True, input=None, env=None):
    """Run a client command; with `check`, a failure is an AssertionError showing its output."""
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input,
                       env=env, stdin=None if input is not None else subprocess.DEVNULL)
    if check and r.returncode:
        raise AssertionError(f"{' '.join(args)} exited {r.returncode}:\n"
                             f"stdout: {r.stdout.strip()}\nstderr: {r.stderr.strip()}")
    return r


# ---------------------------------------------------------------- rootfs and images

def rootfs_tar(dest):
    """The busybox-static test rootfs (tests/busybox_rootfs.py) as an uncompressed tar
    at `dest`; returns its sha256."""
    return busybox_rootfs.tar(dest)


def oci_archive(dest, layer_tar, ref, cmd=("/bin/sh",)):
    """An OCI image layout tarball (for `ctr image import`) with one layer."""
    with open(layer_tar, "rb") as f:
        layer = f.read()
    lsha = hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": list(cmd), "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{lsha}"]},
    }).encode()
    csha = hashlib.sha256(config).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": f"sha256:{csha}", "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": f"sha256:{lsha}", "size": len(layer)}],
    }).encode()
    msha = hashlib.sha256(manifest).hexdigest()
    index = json.dumps({
        "schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": f"sha256:{msha}", "size": len(manifest),
            "annotations": {"io.containerd.image.name": ref,
                            "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1]}}],
    }).encode()
    with tarfile.open(dest, "w") as tf:
        for name, data in (("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                           ("index.json", index), (f"blobs/sha256/{lsha}", layer),
                           (f"blobs/sha256/{csha}", config), (f"blobs/sha256/{msha}", manifest)):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1700000000
            tf.addfile(ti, io.BytesIO(data))


# ---------------------------------------------------------------- processes

class Daemon:
    """One daemon process this session started: its pid, its log file."""

    def __init__(self, name, args, log, env=None):
        self.name, self.args, self.log = name, args, log
        self.logf = open(log, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env=env, close_fds=True)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def wait_for(self, what, check, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited {self.proc.returncode} before {what}; "
                                   f"log:\n{self.tail()}")
            try:
                if check():
                    return
            except Exception:  # noqa: BLE001 - not ready yet
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: no {what} after {timeout}s; log:\n{self.tail()}")

    def tail(self, n=40):
        try:
            with open(self.log, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout=20):
        """SIGTERM, then SIGKILL after `timeout`; by this process's pid only."""
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        self.logf.close()


def pids_with_arg(needle):
    """Pids whose command line contains `needle` (an argument unique to this session)."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if any(needle.encode() in a for a in args):
            found.append(int(d))
    return found


def kill_pids(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def cgroup_dirs(name):
    """Every cgroup directory named `name` directly below a hierarchy root."""
    out = []
    for base in glob.glob("/sys/fs/cgroup/*") + ["/sys/fs/cgroup"]:
        p = os.path.join(base, name.strip("/"))
        if os.path.isdir(p):
            out.append(p)
    return out


def cgroup_pids(name):
    pids = set()
    for top in cgroup_dirs(name):
        for dirpath, _dirs, _files in os.walk(top):
            try:
                with open(os.path.join(dirpath, "cgroup.procs")) as f:
                    pids.update(int(x) for x in f.read().split())
            except OSError:
                pass
    return sorted(pids)


def remove_cgroups(name, timeout=10.0):
    """rmdir the cgroup trees named `name` (deepest first). A tree still busy (conmon
    exiting after the engine stopped) is retried until `timeout`; then it stays."""
    deadline = time.monotonic() + timeout
    while True:
        for top in cgroup_dirs(name):
            if not os.path.ismount(os.path.dirname(top)):
                # a controller this kernel lacks: conmon made plain directories (with
                # a `tasks` file) in /sys/fs/cgroup's tmpfs; they are ours to remove
                shutil.rmtree(top, ignore_errors=True)
                continue
            dirs = [d for d, _s, _f in os.walk(top)]
            for d in sorted(dirs, key=len, reverse=True):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        if not cgroup_dirs(name) or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def mounts_under(path):
    path = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return out


def unmount_under(path):
    for _ in range(5):
        mps = mounts_under(path)
        if not mps:
            return
        for mp in sorted(mps, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)


def remove_tree(path):
    unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- containerd

CONTAINERD_TOML = """version = 2
root = "{root}"
state = "{state}"
disabled_plugins = {disabled}
plugin_dir = ""
[grpc]
  address = "{sock}"
[ttrpc]
  address = ""
[debug]
  level = "debug"
[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/opt"
{extra}"""


class Containerd:
    """A containerd of our own: its socket, root and state under `base`."""

    def __init__(self, base, extra="", disabled=("io.containerd.grpc.v1.cri",), tag="ctrd"):
        self.base = base
        os.makedirs(base, exist_ok=True)
        self.sock = os.path.join(base, "containerd.sock")
        self.config = os.path.join(base, "config.toml")
        with open(self.config, "w") as f:
            f.write(CONTAINERD_TOML.format(
                root=f"{base}/root", state=f"{base}/state", sock=self.sock, base=base,
                disabled=json.dumps(list(disabled)), extra=extra))
        self.daemon = Daemon(tag, [CONTAINERD, "--config", self.config], f"{base}/containerd.log")
        try:
            self.daemon.wait_for("socket", lambda: run(
                [CTR, "--address", self.sock, "version"], timeout=5).returncode == 0)
        except BaseException:
            self.daemon.stop()
            raise

    def ctr(self, ns, *args, timeout=60, check=True, input=None):
        return run([CTR, "--address", self.sock, "--namespace", ns] + list(args),
                   timeout=timeout, check=check, input=input)

    def shims(self):
        # A shim's command line names the containerd address it serves: this one's is ours.
        return [p for p in pids_with_arg(self.sock) if p != self.daemon.pid]

    def stop(self):
        self.daemon.stop()
        kill_pids(self.shims())


# ---------------------------------------------------------------- dockerd

class Dockerd:
    """A dockerd of our own on a containerd of ours (namespace `ns`), with its own
    data root, exec root, pid file, socket, cgroup parent and daemon.json."""

    def __init__(self, base, containerd, ns, cgroup_parent, daemon_json=None):
        self.base, self.containerd, self.ns = base, containerd, ns
        self.cgroup_parent = cgroup_parent
        os.makedirs(base, exist_ok=True)
        self.sock = os.path.join(base, "docker.sock")
        self.config = os.path.join(base, "daemon.json")
        self.pidfile = os.path.join(base, "docker.pid")
        self.exec_root = os.path.join(base, "x")
        if not os.path.exists(self.config):
            with open(self.config, "w") as f:
                json.dump(daemon_json or {}, f)
        self.env = dict(os.environ, DOCKER_CONFIG=os.path.join(base, "client"),
                        DOCKER_HOST=f"unix://{self.sock}")
        self.env.pop("DOCKER_CONTEXT", None)
        self.daemon = None

    def args(self):
        return [DOCKERD, "--config-file", self.config, "--data-root", f"{self.base}/data",
                "--exec-root", self.exec_root, "--pidfile", self.pidfile,
                "--host", f"unix://{self.sock}", "--containerd", self.containerd.sock,
                "--containerd-namespace", self.ns,
                "--containerd-plugins-namespace", self.ns + "-plugins",
                "--iptables=false", "--ip-masq=false", "--bridge=none",
                "--userland-proxy=false", "--storage-driver=overlay2",
                "--cgroup-parent", self.cgroup_parent, "--exec-opt",
                "native.cgroupdriver=cgroupfs", "--log-level=debug"]

    def start(self, extra=()):
        self.daemon = Daemon("dockerd", self.args() + list(extra), f"{self.base}/dockerd.log",
                             env=self.env)
        self.daemon.wait_for("API", lambda: self.docker("version", timeout=5,
                                                        check=False).returncode == 0, 60)

    def docker(self, *args, timeout=60, check=True, input=None):
        return run([DOCKER] + list(args), timeout=timeout, check=check, input=input,
                   env=self.env)

    def hup(self):
        os.kill(self.daemon.pid, signal.SIGHUP)

    def stop(self):
        if self.daemon:
            self.daemon.stop(30)


# ---------------------------------------------------------------- a terminal for clients

def run_in_pty(args, send=b"", timeout=30, env=None):
    """Run `args` with a new pty as its stdin/stdout/stderr and controlling terminal;
    write `send` once it runs; return (exit code, everything it printed)."""
    import fcntl
    import select
    import termios
    master, slave = os.openpty()

    def ctty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                         start_new_session=True, preexec_fn=ctty, close_fds=True)
    os.close(slave)
    out = b""
    end = time.monotonic() + timeout
    sent = False
    try:
        while time.monotonic() < end:
            if not sent and send:
                time.sleep(0.5)
                os.write(master, send)
                sent = True
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        else:
            raise AssertionError(f"{' '.join(args)} still running after {timeout}s; "
                                 f"printed {out!r}")
        return p.wait(10), out.decode(errors="replace")
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        os.close(master)


# ---------------------------------------------------------------- podman

CONTAINERS_CONF = """[containers]
# This machine lacks CAP_SYS_RESOURCE: Podman's default ulimits (nofile/nproc raised
# to the hard limit) can't be set by any runtime. Use the limits the caller has.
default_ulimits = []
netns = "none"
log_driver = "k8s-file"

[network]
network_config_dir = "{base}/net"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{base}/events.log"
lock_type = "file"
tmp_dir = "{base}/tmp"
static_dir = "{base}/storage/libpod"
volume_path = "{base}/storage/volumes"
image_copy_tmp_dir = "{base}/tmp"
conmon_path = ["{conmon}"]
"""

STORAGE_CONF = """[storage]
driver = "overlay"
graphroot = "{base}/storage"
runroot = "{base}/run"
"""


class Podman:
    """Podman with every file of its own under `base` (storage, run root, tmp dir,
    locks, events, network configs), containers under cgroup parent `cgroup_parent`,
    and `runtime` (a path) as its OCI runtime, given with --runtime."""

    def __init__(self, base, runtime, cgroup_parent):
        self.base, self.runtime, self.cgroup_parent = base, runtime, cgroup_parent
        for d in ("tmp", "net", "storage", "run"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        conf = os.path.join(base, "containers.conf")
        with open(conf, "w") as f:
            f.write(CONTAINERS_CONF.format(base=base, conmon=CONMON))
        sconf = os.path.join(base, "storage.conf")
        with open(sconf, "w") as f:
            f.write(STORAGE_CONF.format(base=base))
        rconf = os.path.join(base, "registries.conf")
        with open(rconf, "w") as f:
            f.write("unqualified-search-registries = []\n")
        self.env = dict(os.environ, CONTAINERS_CONF=conf, CONTAINERS_STORAGE_CONF=sconf,
                        CONTAINERS_REGISTRIES_CONF=rconf, TMPDIR=os.path.join(base, "tmp"))
        self.env.pop("XDG_RUNTIME_DIR", None)

    def argv(self, *args):
        return [PODMAN, "--runtime", self.runtime, "--root", f"{self.base}/storage",
                "--runroot", f"{self.base}/run", "--tmpdir", f"{self.base}/tmp",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file", *args]

    def __call__(self, *args, timeout=60, check=True, input=None):
        return run(self.argv(*args), timeout=timeout, check=check, input=input, env=self.env)

    def cleanup(self):
        ids = self("ps", "-aq", check=False).stdout.split()
        if ids:
            self("rm", "-f", "-t", "0", *ids, check=False, timeout=120)
        # conmon and the containers sit in our cgroup parent; anything left there is ours.
        kill_pids(cgroup_pids(self.cgroup_parent))
        time.sleep(0.2)
        remove_cgroups(self.cgroup_parent)
        unmount_under(self.base)


def wait_signal_disposition(pid, signum, field="SigCgt", timeout=30):
    """Wait until process `pid` catches (SigCgt) or ignores (SigIgn) `signum`: a shell
    `trap` is in place and a signal sent now reaches it."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        if int(line.split()[1], 16) >> (signum - 1) & 1:
                            return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"pid {pid}: signal {signum} not in {field} after {timeout}s")
