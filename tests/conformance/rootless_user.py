"""An unprivileged user for the rootless tests, made (and removed) by the tests.

`RootlessUser.create()` (as root):
* `useradd` a user `ocirt-rl-<hex>` (no home; useradd gives it a /etc/subuid and
  /etc/subgid range when SUB_UID_COUNT allows; otherwise one is added with
  `usermod --add-subuids/--add-subgids`);
* /run/user/<uid> owned by the user, mode 0700 (its XDG_RUNTIME_DIR), removed after;
* a work directory under /tmp owned by the user (bundles live there);
* access to the ocirt launcher: every directory on the way to the launcher, its
  interpreter and the repository that "other" can't search (here /root, where
  pyenv keeps the interpreter) gets an ACL entry `u:<user>:x` (setfacl), or,
  without setfacl, o+x, restored afterwards. What was changed is printed.
`close()` undoes all of it: the user's processes are killed by pid (from
/proc, those with its uid), ACLs and modes restored, directories and the user removed.

`RootlessOcirt` is helpers.Ocirt run as that user through setpriv, with no
--root (the default state root, $XDG_RUNTIME_DIR/ocirt, is what is tested).
"""
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import helpers
from helpers import OCIRT, Bundle, build_rootfs


def _other_can_search(path):
    return bool(os.stat(path).st_mode & 0o001)


def _path_dirs(path):
    """Every directory from / down to `path`'s directory (or `path` if a dir)."""
    path = os.path.abspath(path)
    out = []
    cur = path if os.path.isdir(path) else os.path.dirname(path)
    while True:
        out.append(cur)
        if cur == "/":
            break
        cur = os.path.dirname(cur)
    return list(reversed(out))


def launcher_paths():
    """The files an unprivileged user needs to reach to run OCIRT: the launcher, the
    interpreter of its #! line (symlinks resolved), and the repository."""
    paths = [OCIRT, os.path.realpath(OCIRT), helpers.REPO]
    # the C front execs the Python entry script beside it (ocirt/_launcher.py)
    for script in (OCIRT, OCIRT + "-py"):
        try:
            with open(script, "rb") as f:
                first = f.readline().decode(errors="replace")
        except OSError:
            continue
        paths.append(script)
        if first.startswith("#!"):
            interp = first[2:].split()[0]
            paths += [interp, os.path.realpath(interp)]
    return paths


class RootlessUser:
    def __init__(self):
        self.name = None
        self.uid = self.gid = None
        self.runtime_dir = None
        self.work = None
        self.subuid = self.subgid = None  # (start, count)
        self._acl = []      # dirs given u:<name>:x
        self._modes = []    # (dir, old mode) changed with chmod
        self._made_runtime_dir = False
        self._added_subids = None
        self.notes = []

    # --- set-up ---------------------------------------------------------------
    @classmethod
    def create(cls):
        self = cls()
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def _create(self):
        for tool in ("useradd", "userdel", "setpriv"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"the rootless tests need {tool} (to make and become "
                                   "an unprivileged user)")
        name = f"ocirt-rl-{uuid.uuid4().hex[:8]}"
        subprocess.run(["useradd", "-M", "-s", "/bin/sh", "-d", "/nonexistent", name],
                       check=True, capture_output=True)
        self.name = name
        pw = pwd.getpwnam(name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.subuid = self._subid_range("/etc/subuid")
        self.subgid = self._subid_range("/etc/subgid")
        if self.subuid is None or self.subgid is None:
            start = self._free_subid_start()
            rng = f"{start}-{start + 65535}"
            subprocess.run(["usermod", "--add-subuids", rng, "--add-subgids", rng, name],
                           check=True, capture_output=True)
            self._added_subids = rng
            self.subuid = self.subgid = (start, 65536)
        self.runtime_dir = f"/run/user/{self.uid}"
        if not os.path.isdir(self.runtime_dir):
            os.makedirs("/run/user", mode=0o755, exist_ok=True)
            os.mkdir(self.runtime_dir, 0o700)
            self._made_runtime_dir = True
        os.chown(self.runtime_dir, self.uid, self.gid)
        os.chmod(self.runtime_dir, 0o700)
        self.work = tempfile.mkdtemp(prefix=f"ocirt-rl-{self.uid}-", dir="/tmp")
        os.chmod(self.work, 0o755)
        os.chown(self.work, self.uid, self.gid)
        self._grant_launcher()

    def _subid_range(self, path):
        try:
            with open(path) as f:
                for line in f:
                    p = line.strip().split(":")
                    if len(p) == 3 and p[0] in (self.name, str(self.uid)):
                        return int(p[1]), int(p[2])
        except FileNotFoundError:
            pass
        return None

    @staticmethod
    def _free_subid_start():
        end = 100000
        for path in ("/etc/subuid", "/etc/subgid"):
            try:
                with open(path) as f:
                    for line in f:
                        p = line.strip().split(":")
                        if len(p) == 3 and p[1].isdigit() and p[2].isdigit():
                            end = max(end, int(p[1]) + int(p[2]))
            except FileNotFoundError:
                pass
        return (end + 65535) // 65536 * 65536

    def _grant_launcher(self):
        dirs = []
        for p in launcher_paths():
            for d in _path_dirs(p):
                if d not in dirs:
                    dirs.append(d)
        for d in dirs:
            if _other_can_search(d) or os.stat(d).st_uid == self.uid:
                continue
            if shutil.which("setfacl"):
                r = subprocess.run(["setfacl", "-m", f"u:{self.name}:x", d],
                                   capture_output=True, text=True)
                if r.returncode == 0:
                    self._acl.append(d)
                    self.notes.append(f"setfacl -m u:{self.name}:x {d}")
                    continue
            mode = os.stat(d).st_mode & 0o7777
            os.chmod(d, mode | 0o001)
            self._modes.append((d, mode))
            self.notes.append(f"chmod o+x {d} (was {mode:o})")
        if self.notes:
            print(f"rootless tests: to let {self.name} run {OCIRT}: " + "; ".join(self.notes))

    def check_launcher(self):
        """None when the user can run OCIRT, else why not (a skip reason)."""
        r = self.run([OCIRT, "--version"], timeout=60)
        if r.returncode != 0:
            return (f"an unprivileged user cannot run {OCIRT} (exit {r.returncode}: "
                    f"{(r.stderr or r.stdout).strip()[:300]}); its interpreter or the "
                    "repository is not readable by other users")
        return None

    # --- running as the user --------------------------------------------------
    def prefix(self):
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                "--"]

    def env(self, extra=None):
        e = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"),
             "HOME": self.work, "USER": self.name, "LOGNAME": self.name,
             "XDG_RUNTIME_DIR": self.runtime_dir, "LANG": "C.UTF-8"}
        if extra:
            for k, v in extra.items():
                if v is None:
                    e.pop(k, None)
                else:
                    e[k] = v
        return e

    def run(self, argv, env=None, timeout=60, cwd=None, input=None):
        return subprocess.run(self.prefix() + list(argv), env=self.env(env), timeout=timeout,
                              cwd=cwd or self.work, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL if input is None else None,
                              input=input)

    def chown_tree(self, path):
        for d, dirs, files in os.walk(path):
            os.lchown(d, self.uid, self.gid)
            for n in dirs + files:
                os.lchown(os.path.join(d, n), self.uid, self.gid)

    # --- tear-down ------------------------------------------------------------
    def pids(self):
        out = []
        for e in os.listdir("/proc"):
            if e.isdigit():
                try:
                    if os.stat(f"/proc/{e}").st_uid == self.uid:
                        out.append(int(e))
                except OSError:
                    pass
        return out

    def kill_all(self):
        for _ in range(20):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def close(self):
        if self.uid is not None:
            self.kill_all()
        for d in self._acl:
            subprocess.run(["setfacl", "-x", f"u:{self.name}", d], capture_output=True)
        for d, mode in self._modes:
            os.chmod(d, mode)
        self._acl, self._modes = [], []
        if self.work:
            for line in reversed(helpers.mountinfo_lines()):
                mp = line.split()[4]
                if mp.startswith(self.work):
                    subprocess.run(["umount", "-l", mp], capture_output=True)
            subprocess.run(["rm", "-rf", "--one-file-system", self.work], capture_output=True)
        if self.runtime_dir:
            if self._made_runtime_dir:
                shutil.rmtree(self.runtime_dir, ignore_errors=True)
            else:
                shutil.rmtree(os.path.join(self.runtime_dir, "ocirt"), ignore_errors=True)
        if self.name:
            if self._added_subids:
                subprocess.run(["usermod", "--del-subuids", self._added_subids,
                                "--del-subgids", self._added_subids, self.name],
                               capture_output=True)
            subprocess.run(["userdel", "-f", self.name], capture_output=True)
            for path in ("/etc/subuid", "/etc/subgid"):  # older userdel keeps them
                _drop_lines(path, self.name)
            self.name = None


def _drop_lines(path, name):
    try:
        with open(path) as f:
            lines = f.readlines()
    except FileNotFoundError:
        return
    keep = [ln for ln in lines if ln.split(":")[0] != name]
    if keep != lines:
        with open(path + ".ocirt-tmp", "w") as f:
            f.writelines(keep)
        os.chmod(path + ".ocirt-tmp", os.stat(path).st_mode & 0o7777)
        os.rename(path + ".ocirt-tmp", path)


class RootlessOcirt(helpers.Ocirt):
    """helpers.Ocirt as `user`, with the default state root ($XDG_RUNTIME_DIR/ocirt)."""

    def __init__(self, user, marker=None):
        self.user = user
        super().__init__(root=os.path.join(user.runtime_dir, "ocirt"), marker=marker)
        # bundles in a directory the user owns
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = os.path.join(user.work, f"b-{self.marker}")
        os.mkdir(self._tmp, 0o755)
        os.chown(self._tmp, user.uid, user.gid)
        self._spec = None

    def env(self, extra=None):
        e = self.user.env()
        e[helpers.MARKER_VAR] = self.marker
        if extra:
            for k, v in extra.items():
                if v is None:
                    e.pop(k, None)
                else:
                    e[k] = v
        return e

    def argv(self, *args, global_flags=()):
        return self.user.prefix() + [OCIRT, *global_flags, *[str(a) for a in args]]

    def __call__(self, *args, cwd=None, **kw):
        return super().__call__(*args, cwd=cwd or self.user.work, **kw)

    def rootless_spec(self):
        """`ocirt spec --rootless` as the user (a fresh copy)."""
        import copy
        import json
        if self._spec is None:
            d = tempfile.mkdtemp(dir=self.user.work)
            os.chown(d, self.user.uid, self.user.gid)
            try:
                self("spec", "--rootless", "-b", d).ok()
                with open(os.path.join(d, "config.json")) as f:
                    self._spec = json.load(f)
            finally:
                shutil.rmtree(d, ignore_errors=True)
        return copy.deepcopy(self._spec)

    def rootless_config(self, args=None):
        cfg = self.rootless_spec()
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = list(args) if args else ["true"]
        cfg["process"]["env"].append(f"{helpers.MARKER_VAR}={self.marker}")
        return cfg

    def bundle(self, args=None, config=None, where=None):
        self._n += 1
        path = os.path.join(where or self._tmp, f"bundle{self._n}")
        os.mkdir(path)
        build_rootfs(os.path.join(path, "rootfs"))
        self.user.chown_tree(path)
        b = Bundle(path, config if config is not None else self.rootless_config(args))
        self.bundles.append(b)
        b.write()
        os.chown(os.path.join(path, "config.json"), self.user.uid, self.user.gid)
        return b

