"""Runtimes under test, statistics, bundles and leak checks for bench/run.py."""
import ctypes
import itertools
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import threading
import time

from spawn import timed

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import busybox_rootfs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PY = sys.executable
GNU_TIME = "/usr/bin/time"


# --------------------------------------------------------------------------- spawners

class LocalSpawner:
    """Times commands in the harness process itself (ocirt, runc)."""

    def timed(self, argv, capture=True):
        return timed(argv, capture)

    def close(self):
        pass


class NsSpawner:
    """Times commands in nsrunner.py, a private mount namespace without the
    cgroup2 'unified' mount (for crun)."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [shutil.which("unshare"), "-m", "--propagation", "private", PY,
             os.path.join(HERE, "nsrunner.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        hello = json.loads(self.proc.stdout.readline() or '{"ready": false, "err": "no answer"}')
        if not hello.get("ready"):
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"nsrunner: {hello.get('err')}")
        self._ids = itertools.count()
        self._waiting = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            r = json.loads(line)
            with self._lock:
                slot = self._waiting.pop(r["id"])
            slot[1] = r
            slot[0].set()

    def timed(self, argv, capture=True):
        rid = next(self._ids)
        slot = [threading.Event(), None]
        with self._lock:
            self._waiting[rid] = slot
            self.proc.stdin.write(json.dumps({"id": rid, "argv": argv, "capture": capture}) + "\n")
        if not slot[0].wait(300):
            raise RuntimeError(f"nsrunner: no answer for {argv}")
        return slot[1]

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Runtime:
    def __init__(self, name, binary, root, spawner, note=""):
        self.name, self.binary, self.root, self.spawner, self.note = name, binary, root, spawner, note

    def argv(self, *args):
        return [self.binary, "--root", self.root, *args]

    def call(self, *args, capture=True):
        return self.spawner.timed(self.argv(*args), capture)

    def call_maxrss(self, outfile, *args):
        """Like call(), through GNU time: `outfile` gets the peak RSS (KiB) of the
        command and the children it reaped. (ru_maxrss of a child spawned straight
        from the harness would include the harness's own RSS: the kernel carries an
        mm's high-water mark across fork and exec.)"""
        r = self.spawner.timed([GNU_TIME, "-f", "%M", "-o", outfile, *self.argv(*args)], True)
        try:
            with open(outfile) as f:
                r["maxrss_kb"] = int(f.read().split()[-1])
            os.unlink(outfile)
        except (OSError, ValueError, IndexError):
            r["maxrss_kb"] = None
        return r

    def version(self):
        try:
            out = subprocess.run([self.binary, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
            return out.strip().splitlines()[0] if out.strip() else "?"
        except (OSError, subprocess.TimeoutExpired):
            return "?"


class Failed(Exception):
    """A runtime command failed: (what, first line of its stderr)."""

    def __init__(self, what, res):
        err = (res.get("err") or "").strip().splitlines()
        msg = err[-1] if err else f"exit {res.get('rc')}"
        super().__init__(f"{what}: {msg[:300]}")
        self.what = what


def check(res, what):
    if res["rc"] != 0:
        raise Failed(what, res)
    return res


# --------------------------------------------------------------------------- process helpers

def set_subreaper(on=True):
    """Container inits whose launcher exits are reparented to us: we can wait4 them."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1 if on else 0, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def wait_exit(pid, timeout=30.0):
    """Wait until `pid` has exited (reaping it if it is our child). True if it did."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            return False
    finally:
        os.close(fd)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    return True


def reap_orphans():
    """Reap exited orphans reparented to us (only call when nothing else waits)."""
    n = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return n
        if pid == 0:
            return n
        n += 1


def read_pid(path, timeout=5.0):
    end = time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                s = f.read().strip()
            if s:
                try:
                    return int(s)
                except ValueError:
                    raise Failed("create", {"err": f"pid file {path} holds {s[:40]!r}",
                                            "rc": 0}) from None
        except FileNotFoundError:
            pass
        if time.monotonic() > end:
            raise Failed("create", {"err": f"no pid in {path}", "rc": 0})
        time.sleep(0.001)


def start_time(pid):
    """Field 22 of /proc/pid/stat (None if gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    if rest[0] in (b"Z", b"X"):
        return None
    return int(rest[19])


def rss_kb(pid):
    """(VmRSS, Pss) of a live process in KiB."""
    rss = pss = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


# --------------------------------------------------------------------------- leak check

def leaks(rt, ids, inits, bench_dir):
    """What the containers `ids` of runtime `rt` left behind: state dirs, live
    inits (a container's pid namespace lives exactly as long as its init), other
    children of the harness, mounts of the bench dir in this namespace, cgroups."""
    problems = []
    ids = set(ids)
    try:
        left = [e for e in os.listdir(rt.root) if e in ids]
    except FileNotFoundError:
        left = []
    if left:
        problems.append(f"{len(left)} state dirs left in {rt.root} (e.g. {left[0]})")
    alive = [p for p, t in inits if t is not None and start_time(p) == t]
    if alive:
        problems.append(f"{len(alive)} container inits still alive (e.g. pid {alive[0]})")
    with open("/proc/self/mountinfo") as f:
        mnts = [ln for ln in f if bench_dir in ln.split()[4]]
    if mnts:
        problems.append(f"{len(mnts)} mounts under {bench_dir} left in the host namespace")
    cgs = []
    for top in _cgroup_tops():
        for dirpath, dirnames, _ in _walk(top, 4):
            for d in dirnames:
                if any(i in d for i in ids):
                    cgs.append(os.path.join(dirpath, d))
    if cgs:
        problems.append(f"{len(cgs)} cgroups left (e.g. {cgs[0]})")
    return problems


def kill_strays(allowed):
    """SIGKILL and reap live children of the harness other than `allowed`: a
    container init whose runtime lost track of it lands here (we are subreaper).
    Returns their command lines."""
    out = []
    for pid in stray_children(allowed):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = "?"
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        wait_exit(pid, 10)
        out.append(f"pid {pid}: {cmd[:200]}")
    return out


def stray_children(allowed):
    """Live children of the harness other than `allowed` pids (helpers we started)."""
    me = str(os.getpid())
    out = []
    for e in os.scandir("/proc"):
        if not e.name.isdigit() or int(e.name) in allowed:
            continue
        try:
            with open(f"/proc/{e.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rindex(b")") + 2:].split()
        if rest[1].decode() == me and rest[0] not in (b"Z", b"X"):
            out.append(int(e.name))
    return out


def _cgroup_tops():
    tops = []
    with open("/proc/self/mountinfo") as f:
        for ln in f:
            parts = ln.split()
            sep = parts.index("-")
            if parts[sep + 1] in ("cgroup", "cgroup2"):
                tops.append(parts[4])
    return tops


def _walk(top, depth):
    base = top.rstrip("/").count("/")
    for dirpath, dirnames, files in os.walk(top):
        if dirpath.count("/") - base >= depth:
            dirnames[:] = []
        yield dirpath, dirnames, files


# --------------------------------------------------------------------------- statistics

def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"n": len(xs), "median": statistics.median(xs), "p25": pct(xs, 0.25),
            "p75": pct(xs, 0.75), "min": min(xs), "max": max(xs)}


def paired_ratios(a, b):
    """Ratios a[i]/b[i] for the pairs where both were measured."""
    return [x / y for x, y in zip(a, b) if x is not None and y is not None and y > 0]


# --------------------------------------------------------------------------- bundles

def ocirt_spec_config(ocirt, workdir):
    """The default config of `ocirt spec`, as written in an empty directory."""
    os.makedirs(workdir, exist_ok=True)
    p = os.path.join(workdir, "config.json")
    if os.path.exists(p):
        os.unlink(p)
    subprocess.run([ocirt, "spec"], cwd=workdir, check=True, capture_output=True)
    with open(p) as f:
        cfg = json.load(f)
    os.unlink(p)
    cfg["ociVersion"] = "1.0.2"  # Debian's crun 1.8 refuses versions it does not know
    return cfg


def make_rootfs(path):
    """The busybox-static test rootfs (tests/busybox_rootfs.py) at `path`."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    busybox_rootfs.build(path)


def write_bundle(path, cfg, args):
    make_rootfs(os.path.join(path, "rootfs"))
    c = json.loads(json.dumps(cfg))
    c["process"]["args"] = args
    c["process"]["terminal"] = False
    c["root"]["path"] = "rootfs"
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    return path


def reduce_config(cfg):
    """The default config less the /sys/fs/cgroup mount and linux.resources."""
    c = json.loads(json.dumps(cfg))
    c["mounts"] = [m for m in c.get("mounts", []) if m.get("destination") != "/sys/fs/cgroup"]
    (c.get("linux") or {}).pop("resources", None)
    return c
