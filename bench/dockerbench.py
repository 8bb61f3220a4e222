"""`docker run --rm` through one private dockerd with each runtime registered.

The daemon is ours alone: its own data root, exec root, pid file, socket and
containerd namespace, no iptables and no bridge; the image is a `docker import`
of the bench busybox rootfs. Everything is stopped and removed afterwards.
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time

from harness import REPO
from spawn import timed

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"       # the client that ships with docker.io (same version)
RUN_DIR = "/run/ocirt-bench-docker"            # short: containerd's socket lives below
DATA_DIR = "/var/lib/ocirt-bench-docker"
IMAGE = "ocirt-bench/busybox:latest"


def ensure_installed(log):
    if os.access(DOCKERD, os.X_OK) and os.access(DOCKER, os.X_OK):
        return None
    log("docker: installing docker.io and containerd (tests/install-packages.sh)")
    r = subprocess.run(["sh", os.path.join(REPO, "tests", "install-packages.sh"),
                        "docker.io", "containerd"], capture_output=True, text=True)
    if r.returncode != 0 or not os.access(DOCKERD, os.X_OK):
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["?"]
        return f"docker.io is not installed and could not be installed ({tail[0]})"
    return None


class Daemon:
    def __init__(self, bench_dir, runtimes, log):
        self.log = log
        self.dir = os.path.join(bench_dir, "docker")
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(RUN_DIR, "docker.sock")
        self.host = "unix://" + self.sock
        self.proc = None
        self.runtimes = runtimes          # docker runtime name -> binary path
        self.logfile = os.path.join(self.dir, "dockerd.log")

    def docker(self, *args, capture=True):
        return timed([DOCKER, "-H", self.host, *args], capture)

    def start(self):
        self.stop_leftovers()
        self.cg_before = set(glob.glob("/sys/fs/cgroup/*/docker"))
        os.makedirs(RUN_DIR, exist_ok=True)
        os.makedirs(DATA_DIR, exist_ok=True)
        conf = os.path.join(self.dir, "daemon.json")
        with open(conf, "w") as f:
            json.dump({"runtimes": {k: {"path": v} for k, v in self.runtimes.items()}}, f,
                      indent=2)
        argv = [DOCKERD, "--config-file", conf,
                "--data-root", os.path.join(DATA_DIR, "data"),
                "--exec-root", os.path.join(RUN_DIR, "exec"),
                "--pidfile", os.path.join(RUN_DIR, "dockerd.pid"),
                "-H", self.host,
                "--containerd-namespace", "ocirt-bench",
                "--containerd-plugins-namespace", "ocirt-bench-plugins",
                "--iptables=false", "--ip-masq=false", "--bridge=none",
                "--userland-proxy=false", "--log-level=warn"]
        self.log("docker: " + " ".join(argv[1:]))
        out = open(self.logfile, "w")
        self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        end = time.monotonic() + 90
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited ({self.proc.returncode}): {self._log_tail()}")
            if os.path.exists(self.sock) and self.docker("version")["rc"] == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not answer within 90 s: {self._log_tail()}")

    def _log_tail(self):
        try:
            with open(self.logfile) as f:
                lines = [ln.strip() for ln in f if ln.strip()]
            return lines[-1][:300] if lines else "(empty log)"
        except OSError:
            return "(no log)"

    def import_image(self, rootfs):
        tar = os.path.join(self.dir, "rootfs.tar")
        with tarfile.open(tar, "w") as t:
            for name in sorted(os.listdir(rootfs)):
                t.add(os.path.join(rootfs, name), arcname=name)
        r = self.docker("import", tar, IMAGE)
        if r["rc"] != 0:
            raise RuntimeError(f"docker import: {r['err'].strip()[-300:]}")

    def run_rm(self, runtime):
        return self.docker("run", "--rm", "--runtime", runtime, "--network", "none",
                           IMAGE, "/bin/true")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        self.stop_leftovers()
        # dockerd's cgroupfs driver leaves an empty "docker" parent in each hierarchy
        for d in set(glob.glob("/sys/fs/cgroup/*/docker")) - getattr(self, "cg_before", set()):
            try:
                os.rmdir(d)
            except OSError:
                pass

    def stop_leftovers(self):
        """Processes and mounts of an earlier bench daemon (ours only, by path)."""
        for e in os.scandir("/proc"):
            if not e.name.isdigit():
                continue
            try:
                with open(f"/proc/{e.name}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if RUN_DIR.encode() in cmd or DATA_DIR.encode() in cmd:
                try:
                    os.kill(int(e.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.2)
        with open("/proc/self/mountinfo") as f:
            mnts = [ln.split()[4] for ln in f]
        for m in sorted((m for m in mnts if m.startswith((RUN_DIR, DATA_DIR))),
                        key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        for d in (RUN_DIR, DATA_DIR):
            shutil.rmtree(d, ignore_errors=True)
