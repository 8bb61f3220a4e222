"""Shared helpers for the conformance tests.

The tests run the real CLI (`OCIRT`) as root on busybox-static bundles:

* `build_rootfs(dir)`: a rootfs with /bin/busybox and its applet symlinks,
  /etc/passwd and /etc/group (root, a uid 1000 user, nobody);
* `base_config(args)`: `ocirt spec` output made non-interactive (terminal false);
* `Bundle`: a bundle directory (rootfs + config.json) with its config as a dict;
* `Ocirt`: the CLI with its own --root under /tmp, that remembers every container
  id it handed out, and can tell what a test left behind (`leftovers()`) and
  clean it (`cleanup()`).  The conftest fixture `ocirt` asserts nothing is left.

Every process a test starts through `Ocirt` carries OCIRT_TEST_MARKER=<marker> in
its environment (and containers made from `base_config` in theirs), and every
container id contains the marker: that is how leftovers are found.
"""
import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests"))
import busybox_rootfs  # noqa: E402
REPO_SPEC = os.path.join(REPO, "spec")
OCIRT = os.environ.get("OCIRT", os.path.join(REPO, ".venv/bin/ocirt"))
BUSYBOX = busybox_rootfs.BUSYBOX
MARKER_VAR = "OCIRT_TEST_MARKER"
# Bundles go to a tmpfs when there is one (writing ~400 applet links on a busy disk
# costs up to half a second per bundle); the state roots stay under /tmp.
BUNDLES_DIR = os.environ.get("OCIRT_TEST_BUNDLES",
                             "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp")

# cgroups are being implemented: until they land, the default config drops the
# `/sys/fs/cgroup` mount (type cgroup) and `linux.resources` from `ocirt spec`'s
# output.  Set to True (or OCIRT_TEST_CGROUPS=1) to test the full default config.
CGROUPS_READY = os.environ.get("OCIRT_TEST_CGROUPS", "1") == "1"

# --- rootfs and config ----------------------------------------------------------
# The rootfs is the one tests/busybox_rootfs.py builds for every test suite.

build_rootfs = busybox_rootfs.build
busybox_applets = busybox_rootfs.applets
PASSWD, GROUP = busybox_rootfs.PASSWD, busybox_rootfs.GROUP
_spec = None


def default_spec():
    """`ocirt spec` output (a fresh copy each call)."""
    global _spec
    if _spec is None:
        with tempfile.TemporaryDirectory(prefix="ocirt-spec-") as d:
            p = subprocess.run([OCIRT, "spec", "-b", d], capture_output=True, text=True,
                               timeout=30)
            assert p.returncode == 0, f"ocirt spec failed: {p.stderr}"
            with open(os.path.join(d, "config.json")) as f:
                _spec = json.load(f)
    return copy.deepcopy(_spec)


def base_config(args=None, marker=None):
    """The default config, non-interactive, running `args` (default: true)."""
    cfg = default_spec()
    proc = cfg["process"]
    proc["terminal"] = False
    proc["args"] = list(args) if args else ["true"]
    if marker:
        proc["env"].append(f"{MARKER_VAR}={marker}")
    if not CGROUPS_READY:
        cfg["mounts"] = [m for m in cfg["mounts"] if m.get("type") != "cgroup"]
        cfg.get("linux", {}).pop("resources", None)
    return cfg


def ns(cfg, *types):
    """The linux.namespaces entry of each type in `types` (None if absent)."""
    found = {n["type"]: n for n in cfg["linux"].get("namespaces", [])}
    return [found.get(t) for t in types]


def set_namespaces(cfg, entries):
    """Replace linux.namespaces: entries are types or (type, path) pairs."""
    out = []
    for e in entries:
        if isinstance(e, str):
            out.append({"type": e})
        else:
            out.append({"type": e[0], "path": e[1]})
    cfg["linux"]["namespaces"] = out
    return cfg


def add_userns(b, uid=100000, gid=None, size=65536, mounts=True):
    """A new user namespace for bundle `b`: container 0.. mapped to host `uid`..
    (`gid`.., default the same); without the cgroup and sysfs mounts, which a root
    mapped elsewhere may not make (`mounts` False keeps them)."""
    b.linux["namespaces"].append({"type": "user"})
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": size}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": uid if gid is None else gid,
                               "size": size}]
    if mounts:
        b.config["mounts"] = [m for m in b.config["mounts"]
                              if m.get("type") not in ("cgroup", "sysfs")]
    return b


class Bundle:
    """A bundle directory: rootfs/ and config.json (`config` is the dict)."""

    def __init__(self, path, config):
        self.path = str(path)
        self.rootfs = os.path.join(self.path, "rootfs")
        self.config = config

    def write(self):
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=1)
        return self

    def write_raw(self, text):
        with open(os.path.join(self.path, "config.json"), "w") as f:
            f.write(text)
        return self

    @property
    def process(self):
        return self.config["process"]

    @property
    def linux(self):
        return self.config.setdefault("linux", {})

    def args(self, *argv):
        self.config["process"]["args"] = list(argv)
        return self

    def sh(self, script):
        """Run `script` with sh -c."""
        return self.args("sh", "-c", script)


# --- the CLI --------------------------------------------------------------------

class Result:
    def __init__(self, argv, returncode, stdout, stderr):
        self.argv, self.returncode, self.stdout, self.stderr = argv, returncode, stdout, stderr

    def __repr__(self):
        return (f"<{' '.join(self.argv[3:])!r} exited {self.returncode}\n"
                f"stdout={self.stdout!r}\nstderr={self.stderr!r}>")

    def ok(self):
        assert self.returncode == 0, f"command failed: {self!r}"
        return self

    @property
    def lines(self):
        return self.stdout.splitlines()


VERBS = {"create", "start", "state", "kill", "delete", "run", "list", "spec", "features",
         "exec", "ps", "pause", "resume", "update", "events", "checkpoint", "restore", "help"}
OCI_STATE_FIELDS = ("ociVersion", "id", "status", "pid", "bundle", "annotations")


def oci_state(st):
    """The OCI fields of a state (ocirt adds others, e.g. usage, that change)."""
    return {k: st[k] for k in OCI_STATE_FIELDS if k in st}


def error_lines(stderr):
    """stderr without the log lines of warnings (and --debug lines): with no --log,
    runc and ocirt write those to stderr too, before the one error line."""
    return [ln for ln in stderr.splitlines()
            if not (ln.startswith("time=") and (" level=warning " in ln or " level=debug " in ln))]


def assert_error(res, *needles):
    """The runtime's error rule: exit 1 (255 for `exec`, as runc's: 1 may be its
    process's status), ONE stderr line, no traceback, the line names every needle
    (a JSON path, an id...)."""
    verb = next((a for a in res.argv[1:] if a in VERBS), None)
    want = 255 if verb == "exec" else 1
    assert res.returncode == want, f"expected exit status {want}: {res!r}"
    assert "Traceback" not in res.stderr, f"traceback printed: {res!r}"
    lines = error_lines(res.stderr)
    assert len(lines) == 1, f"expected one stderr line: {res!r}"
    for n in needles:
        assert n in lines[0], f"error line does not name {n!r}: {res!r}"
    return lines[0]


class Ocirt:
    """The ocirt CLI with a private --root; tracks ids, pids, bundles."""

    def __init__(self, root=None, marker=None):
        self.marker = marker or uuid.uuid4().hex[:10]
        self.root = root or tempfile.mkdtemp(prefix=f"ocirt-t-{self.marker}-", dir="/tmp")
        self.ids = []
        self.pids = set()
        self.bundles = []
        self._n = 0
        self._tmp = tempfile.mkdtemp(prefix=f"ocirt-b-{self.marker}-", dir=BUNDLES_DIR)
        os.chmod(self._tmp, 0o755)  # a container's mapped root must reach its bundle

    # ids and bundles
    def new_id(self, prefix="c"):
        self._n += 1
        cid = f"{prefix}-{self.marker}-{self._n}"
        self.ids.append(cid)
        return cid

    def bundle(self, args=None, config=None, where=None):
        """A new bundle (written) with `base_config(args)` or `config`, in a
        private tmp dir (or under `where`)."""
        self._n += 1
        path = os.path.join(where or self._tmp, f"bundle{self._n}")
        os.mkdir(path)
        build_rootfs(os.path.join(path, "rootfs"))
        b = Bundle(path, config if config is not None else base_config(args, self.marker))
        self.bundles.append(b)
        return b.write()

    # running the CLI
    def env(self, extra=None):
        e = dict(os.environ)
        e.pop("NOTIFY_SOCKET", None)
        e.pop("LISTEN_FDS", None)
        e.pop("LISTEN_PID", None)
        e[MARKER_VAR] = self.marker
        if extra:
            e.update(extra)
        return e

    def argv(self, *args, global_flags=()):
        return [OCIRT, "--root", self.root, *global_flags, *[str(a) for a in args]]

    def __call__(self, *args, stdin=subprocess.DEVNULL, stdout=None, stderr=None, timeout=30,
                 global_flags=(), env=None, pass_fds=(), cwd=None, preexec_fn=None):
        """Run `ocirt --root R args...`.  stdout and stderr go to files unless given
        (a container may inherit them and outlive the command, so a pipe read by
        the test would not reach EOF); the Result holds what the files got."""
        argv = self.argv(*args, global_flags=global_flags)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(argv, stdin=stdin, stdout=out if stdout is None else stdout,
                               stderr=err if stderr is None else stderr, timeout=timeout,
                               env=self.env(env), pass_fds=pass_fds, cwd=cwd,
                               preexec_fn=preexec_fn)
            out.seek(0)
            err.seek(0)
            return Result(argv, p.returncode, out.read().decode(errors="replace"),
                          err.read().decode(errors="replace"))

    def spawn(self, *args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL, global_flags=(), env=None, pass_fds=()):
        """Start `ocirt --root R args...` without waiting (a subprocess.Popen)."""
        return subprocess.Popen(self.argv(*args, global_flags=global_flags), stdin=stdin,
                                stdout=stdout, stderr=stderr, env=self.env(env),
                                pass_fds=pass_fds)

    def create(self, cid, bundle, *flags, **kw):
        b = bundle.path if isinstance(bundle, Bundle) else bundle
        r = self("create", "--bundle", b, *flags, cid, **kw)
        if r.returncode == 0:
            self._note_pid(cid)
        return r

    def start(self, cid, **kw):
        return self("start", cid, **kw)

    def state(self, cid):
        r = self("state", cid).ok()
        st = json.loads(r.stdout)
        if st.get("pid"):
            self.pids.add(st["pid"])
        return st

    def status(self, cid):
        return self.state(cid)["status"]

    def kill(self, cid, *args, **kw):
        return self("kill", cid, *args, **kw)

    def delete(self, cid, *flags, **kw):
        return self("delete", *flags, cid, **kw)

    def run(self, cid, bundle, *flags, **kw):
        b = bundle.path if isinstance(bundle, Bundle) else bundle
        return self("run", "--bundle", b, *flags, cid, **kw)

    def run_sh(self, bundle, script, *flags, **kw):
        """Rewrite `bundle` to run `sh -c script`, `ocirt run` it; the Result's
        stdout is what the container printed."""
        bundle.sh(script).write()
        return self.run(self.new_id(), bundle, *flags, **kw)

    def _note_pid(self, cid):
        try:
            r = self("state", cid)
            if r.returncode == 0:
                pid = json.loads(r.stdout).get("pid")
                if pid:
                    self.pids.add(pid)
        except Exception:  # noqa: BLE001 - only for leftover tracking
            pass

    def wait_status(self, cid, status, timeout=20):
        deadline = time.monotonic() + timeout
        st = None
        while time.monotonic() < deadline:
            st = self.state(cid)
            if st["status"] == status:
                return st
            time.sleep(0.02)
        raise AssertionError(f"container {cid} did not reach {status!r}: last state {st}")

    # what a test left behind ------------------------------------------------------
    def leftovers(self):
        """Descriptions of everything the containers of this test left behind."""
        left = []
        for cid in self.state_dirs():
            left.append(f"state dir {os.path.join(self.root, cid)}")
        paths = [self.root, self._tmp] + [b.path for b in self.bundles]
        for line in mountinfo_lines():
            if any(p in line for p in paths):
                left.append(f"mount: {line}")
        # processes SIGKILLed with their pid namespace may take a moment to go
        deadline = time.monotonic() + 2
        while self.live_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in self.live_pids():
            left.append(f"process {pid}: {proc_cmdline(pid)!r}")
        for d in cgroup_dirs_matching(self.marker):
            left.append(f"cgroup dir {d}")
        return left

    def state_dirs(self):
        try:
            return sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []

    def live_pids(self):
        """Processes (not zombies) that carry the marker or that we saw as a
        container pid and that are still alive."""
        found = set()
        needle = f"{MARKER_VAR}={self.marker}".encode()
        me = os.getpid()
        for e in os.listdir("/proc"):
            if not e.isdigit() or int(e) == me:
                continue
            try:
                with open(f"/proc/{e}/environ", "rb") as f:
                    env = f.read()
            except OSError:
                continue
            if needle in env.split(b"\0") and not is_zombie(int(e)):
                found.add(int(e))
        return sorted(found)

    def cleanup(self):
        """Force everything away: used after the leftover check (and on failure)."""
        for cid in self.state_dirs():
            try:
                self("delete", "--force", cid, timeout=15)
            except Exception:  # noqa: BLE001
                pass
        for _ in range(3):
            pids = self.live_pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        paths = [self.root, self._tmp]
        for line in reversed(mountinfo_lines()):
            mp = line.split()[4]
            if any(mp.startswith(p) for p in paths):
                subprocess.run(["umount", "-l", mp], capture_output=True)
        for d in cgroup_dirs_matching(self.marker):
            for sub, _dirs, _files in sorted(os.walk(d), key=lambda t: -len(t[0])):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass
        subprocess.run(["rm", "-rf", "--one-file-system", self.root, self._tmp],
                       capture_output=True)


def mountinfo_lines():
    with open("/proc/self/mountinfo") as f:
        return f.read().splitlines()


def is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return True
    return data[data.rindex(b")") + 2:data.rindex(b")") + 3] in (b"Z", b"X")


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def cgroup_mounts():
    out = []
    for line in mountinfo_lines():
        left, _, right = line.partition(" - ")
        fstype = right.split()[0] if right else ""
        if fstype in ("cgroup", "cgroup2"):
            out.append(left.split()[4])
    return out


def cgroup_dirs_matching(marker):
    found = []
    for mp in cgroup_mounts():
        for d, dirs, _files in os.walk(mp):
            for name in dirs:
                if marker in name:
                    found.append(os.path.join(d, name))
    return found


# --- small host-side helpers ----------------------------------------------------

def ns_inode(pid, name):
    return os.stat(f"/proc/{pid}/ns/{name}").st_ino


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def wait_for(pred, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def pid_alive(pid):
    return os.path.exists(f"/proc/{pid}") and not is_zombie(pid)


class Holder:
    """A process (`unshare --<ns> sleep`) holding namespaces to join by path."""

    def __init__(self, *unshare_flags):
        self.p = subprocess.Popen(["unshare", *unshare_flags, "sleep", "600"],
                                  stdin=subprocess.DEVNULL)
        # unshare execs sleep once the namespaces exist
        wait_for(lambda: proc_cmdline(self.p.pid).startswith("sleep"), what="unshare")
        self.pid = self.p.pid

    def path(self, name):
        return f"/proc/{self.pid}/ns/{name}"

    def inode(self, name):
        return ns_inode(self.pid, name)

    def close(self):
        self.p.kill()
        self.p.wait()


# --- the qemu guest (tests/vm) ---------------------------------------------------

def guest_harness(what, systemd=False):
    """tests/vm/guest.py, or a skip naming why the guest `what` needs is unavailable
    (and inside the guest itself: those tests run there directly)."""
    import pytest
    if os.environ.get("OCIRT_IN_GUEST") == "1":
        pytest.skip("already inside the guest")
    sys.path.insert(0, os.path.join(REPO, "tests", "vm"))
    try:
        import guest
    except ImportError as e:
        pytest.skip(f"the qemu guest harness cannot load: {e}")
    ok, why = guest.systemd_available() if systemd else guest.available()
    if not ok:
        pytest.skip(f"{what} needs the {'systemd ' if systemd else ''}qemu guest, which "
                    f"is unavailable: {why}")
    return guest

