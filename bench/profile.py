"""Where ocirt's time goes, verb by verb: interpreter start, imports (-X importtime),
phases of its own code (every ocirt function wrapped, across the create, intermediate
and init processes), syscalls (strace -c -f) and perf stat software counters.

    .venv/bin/python bench/profile.py                 # run create start state kill delete
    .venv/bin/python bench/profile.py --verbs create --runs 20
    .venv/bin/python bench/profile.py --ocirt /path/to/other/launcher

Writes build/bench/profile.md (and prints it). Uses the bench bundles of the last
bench run (build/bench/bundle-true, bundle-sleep): run `bench/run.py --quick
--sections latency` once first. Must run as root.
"""
import argparse
import ast
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from spawn import timed  # noqa: E402

REPO = harness.REPO
BENCH = os.path.join(REPO, "build", "bench")
VERBS = ("run", "create", "start", "state", "kill", "delete")

# The tracer: runs ocirt's main() like the launcher does, after installing an import
# hook that times each ocirt module's execution and wraps its functions and methods.
# Each call is written as one line to an inherited fd, so the intermediate and init
# (forked children) are traced too. It imports nothing the interpreter has not
# already loaded at startup (sys, os, time are there), so import costs stay honest.
TRACER = r'''
import sys, os, time
_fd = int(sys.argv[1]); sys.path[:0] = sys.argv[2].split(":"); sys.argv = ["ocirt"] + sys.argv[3:]
# close-on-exec: ocirt closes the inheritable fds it was given before forking init,
# but keeps (and never execs with) its own close-on-exec ones
os.set_inheritable(_fd, False)
_st = os.fstat(_fd); _id = (_st.st_dev, _st.st_ino)
_now = time.perf_counter_ns
_depth = [0]
_FT = type(lambda: 0)
def _rec(kind, name, d, t0, t1):
    try:
        st = os.fstat(_fd)
        if (st.st_dev, st.st_ino) != _id:
            return
        os.write(_fd, ("%d %s %d %d %d %s\n" % (os.getpid(), kind, d, t0, t1, name)).encode())
    except OSError:
        pass
def _wrap(f, name):
    def w(*a, **k):
        d = _depth[0]; _depth[0] = d + 1; t0 = _now()
        try:
            return f(*a, **k)
        finally:
            _depth[0] = d; _rec("call", name, d, t0, _now())
    w.__name__, w.__qualname__, w.__doc__, w.__wrapped__ = f.__name__, f.__qualname__, f.__doc__, f
    w.__module__ = f.__module__
    return w
def _wrap_module(m):
    for k, v in list(vars(m).items()):
        if type(v) is _FT and v.__module__ == m.__name__:
            setattr(m, k, _wrap(v, m.__name__ + "." + v.__qualname__))
        elif isinstance(v, type) and v.__module__ == m.__name__ and not issubclass(v, BaseException):
            for kk, vv in list(vars(v).items()):
                if type(vv) is _FT:
                    setattr(v, kk, _wrap(vv, m.__name__ + "." + vv.__qualname__))
                elif isinstance(vv, staticmethod) and type(vv.__func__) is _FT:
                    setattr(v, kk, staticmethod(_wrap(vv.__func__, m.__name__ + "." + vv.__func__.__qualname__)))
class _Hook:
    def find_spec(self, name, path, target=None):
        if name != "ocirt" and not name.startswith("ocirt."):
            return None
        for f in sys.meta_path:
            if f is self or not hasattr(f, "find_spec"):
                continue
            spec = f.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        ld = spec.loader
        orig = ld.exec_module
        def exec_module(module, _orig=orig, _name=name):
            d = _depth[0]; _depth[0] = d + 1; t0 = _now()
            try:
                _orig(module)
            finally:
                _depth[0] = d; _rec("import", _name, d, t0, _now())
            _wrap_module(module)
        try:
            ld.exec_module = exec_module
        except AttributeError:
            pass
        return spec
sys.meta_path.insert(0, _Hook())
_t0 = _now()
_rec("mark", "main-start", 0, _t0, _t0)
from ocirt.main import main
try:
    rc = main()
finally:
    _t1 = _now(); _rec("mark", "main-end", 0, _t1, _t1)
sys.exit(rc)
'''


def launcher_info(path):
    """(python, sys.path entries) of an ocirt launcher written by ocirt/_launcher.py
    (the Python entry script beside the C front, when `path` is the front)."""
    with open(path, "rb") as f:
        if f.read(4) == b"\x7fELF":
            path += "-py"
    with open(path) as f:
        lines = f.read().splitlines()
    py = lines[0][2:].split()[0]
    paths = []
    for ln in lines:
        if ln.startswith("sys.path[:0] = "):
            paths = ast.literal_eval(ln.split("=", 1)[1].strip())
    return py, paths


class Setup:
    """Brings a container to the state a verb needs, and cleans up after it."""

    def __init__(self, ocirt, runc, root, bt, bs):
        self.o, self.runc, self.root, self.bt, self.bs = ocirt, runc, root, bt, bs
        self.n = 0

    def args(self, verb, rt="ocirt"):
        """Return (cid, argv tail for the verb, teardown callable)."""
        self.n += 1
        cid = f"ocb-prof-{rt}-{verb}-{self.n}"
        exe = self.o if rt == "ocirt" else self.runc
        root = os.path.join(self.root, rt)

        def call(*a):
            return timed([exe, "--root", root, *a])

        pidf = os.path.join(self.root, cid + ".pid")

        def create(bundle):
            harness.check(call("create", "--bundle", bundle, "--pid-file", pidf, cid), "setup create")
            return harness.read_pid(pidf)

        def gone():
            call("delete", "--force", cid)

        if verb == "run":
            return ["run", "--bundle", self.bt, cid], gone
        if verb == "create":
            return ["create", "--bundle", self.bt, cid], gone
        if verb == "state":
            create(self.bt)
            return ["state", cid], gone
        if verb == "start":
            pid = create(self.bt)
            return ["start", cid], lambda: (harness.wait_exit(pid, 10), gone())
        if verb == "kill":
            pid = create(self.bs)
            harness.check(call("start", cid), "setup start")
            return ["kill", cid, "KILL"], lambda: (harness.wait_exit(pid, 10), gone())
        if verb == "delete":
            pid = create(self.bt)
            harness.check(call("start", cid), "setup start")
            harness.wait_exit(pid, 10)
            return ["delete", cid], gone
        raise ValueError(verb)


def _wait_tracee(tracer, timeout=30.0):
    end = time.monotonic() + timeout
    tracee = None
    while time.monotonic() < end:
        if tracee is None:
            try:
                with open(f"/proc/{tracer}/task/{tracer}/children") as f:
                    kids = f.read().split()
                tracee = int(kids[0]) if kids else None
            except OSError:
                return
        elif not os.path.exists(f"/proc/{tracee}"):
            return
        time.sleep(0.005)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# --------------------------------------------------------------------------- importtime

def parse_importtime(text):
    """[(module, self_us, cumulative_us, parent)] in import order (parents follow children)."""
    rows = []
    for ln in text.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", ln)
        if m:
            rows.append((m.group(4), int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2))
    out = []
    # a module's parent is the next row (later in the output) with a smaller indent
    for i, (name, s, c, lvl) in enumerate(rows):
        parent = ""
        for j in range(i + 1, len(rows)):
            if rows[j][3] < lvl:
                parent = rows[j][0]
                break
        out.append((name, s, c, parent, lvl))
    return out


# --------------------------------------------------------------------------- strace / perf

def parse_strace_c(path):
    rows = {}
    with open(path) as f:
        for ln in f:
            p = ln.split()
            if len(p) >= 5 and re.match(r"^[\d.]+$", p[0]) and p[-1] not in ("total",):
                try:
                    calls = int(p[3])
                    errors = int(p[4]) if len(p) == 6 else 0
                    rows[p[-1]] = (float(p[1]), calls, errors)
                except ValueError:
                    pass
    return rows


def parse_perf(path):
    out = {}
    with open(path) as f:
        for ln in f:
            p = ln.strip().split(",")
            if len(p) >= 3 and p[0] and p[0][0].isdigit():
                try:
                    out[p[2]] = float(p[0])
                except ValueError:
                    pass
    return out


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ocirt", default=os.path.join(REPO, ".venv", "bin", "ocirt"))
    ap.add_argument("--verbs", default=",".join(VERBS))
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--depth", type=int, default=3, help="deepest call level shown")
    ap.add_argument("--out", default=os.path.join(BENCH, "profile.md"))
    a = ap.parse_args()
    ocirt = os.path.abspath(a.ocirt)
    py, paths = launcher_info(ocirt)
    bt, bs = os.path.join(BENCH, "bundle-true"), os.path.join(BENCH, "bundle-sleep")
    if not os.path.exists(os.path.join(bt, "config.json")):
        sys.exit("no bench bundles: run `.venv/bin/python bench/run.py --quick --sections latency` first")
    harness.set_subreaper()
    root = tempfile.mkdtemp(prefix="ocb-prof-", dir="/run")
    subprocess.run(["mount", "-t", "tmpfs", "ocb-prof", root], check=True)
    runc = shutil.which("runc")
    st = Setup(ocirt, runc, root, bt, bs)
    strace = shutil.which("strace")
    perf = shutil.which("perf")
    L = []
    w = L.append
    try:
        # interpreter baseline and the modules it has loaded before any ocirt code
        base_wall = []
        for _ in range(a.runs):
            base_wall.append(timed([py, "-I", "-S", "-c", "pass"])["ns"])
        r = timed([py, "-I", "-S", "-X", "importtime", "-c", "pass"])
        startup_mods = {m[0] for m in parse_importtime(r["err"])}
        w(f"# ocirt profile ({time.strftime('%Y-%m-%d %H:%M')}, {a.runs} runs per figure, medians)")
        w("")
        w(f"Launcher `{ocirt}`; interpreter `{py} -I -S`: `-c pass` takes "
          f"{med(base_wall) / 1e6:.1f} ms here (load average {os.getloadavg()[0]:.2f}).")
        w("")
        for verb in a.verbs.split(","):
            w(f"## {verb}")
            w("")
            # --- wall, ocirt vs runc, alternating
            wo, wr, co, cr = [], [], [], []
            for i in range(a.runs):
                for rt in (("ocirt", "runc") if i % 2 == 0 else ("runc", "ocirt")):
                    args, td = st.args(verb, rt)
                    exe = ocirt if rt == "ocirt" else runc
                    res = timed([exe, "--root", os.path.join(root, rt), *args])
                    (wo if rt == "ocirt" else wr).append(res["ns"] if res["rc"] == 0 else None)
                    (co if rt == "ocirt" else cr).append(res["cpu_ns"] if res["rc"] == 0 else None)
                    if res["rc"] != 0 and rt == "ocirt":
                        w(f"ocirt {verb} FAILS: {res['err'].strip()[-200:]}")
                    td()
            mo, mr = med(wo), med(wr)
            w(f"Wall: ocirt **{mo / 1e6:.1f} ms**, runc {mr / 1e6:.1f} ms; CPU (user+sys, "
              f"with reaped children): ocirt {med(co) / 1e6:.1f} ms, runc {med(cr) / 1e6:.1f} ms."
              if mo and mr else f"Wall: ocirt {mo}, runc {mr}")
            w("")
            # --- imports
            per_mod = {}
            totals = []
            for _ in range(a.runs):
                args, td = st.args(verb)
                res = timed([py, "-I", "-S", "-X", "importtime", ocirt,
                             "--root", os.path.join(root, "ocirt"), *args])
                td()
                rows = parse_importtime(res["err"])
                tot = 0
                for name, s, c, parent, lvl in rows:
                    if name in startup_mods:
                        continue
                    per_mod.setdefault(name, {"self": [], "cum": [], "parent": parent,
                                              "lvl": lvl})
                    per_mod[name]["self"].append(s)
                    per_mod[name]["cum"].append(c)
                    tot += s
                totals.append(tot)
            w(f"Imports beyond the interpreter's own start-up: **{med(totals) / 1e3:.1f} ms** "
              f"in {len(per_mod)} modules (sum of self times, `-X importtime`, which itself "
              "adds a little). Top-level imports (cumulative) and the heaviest modules (self):")
            w("")
            w("| module | cumulative ms | self ms | imported by |")
            w("| --- | --- | --- | --- |")
            tops = sorted(((n, d) for n, d in per_mod.items()),
                          key=lambda kv: -med(kv[1]["cum"]))
            shown = 0
            for n, d in tops:
                if med(d["cum"]) < 300 and shown >= 8:
                    break
                if d["lvl"] <= 2 or med(d["self"]) >= 500:
                    w(f"| {n} | {med(d['cum']) / 1e3:.2f} | {med(d['self']) / 1e3:.2f} | "
                      f"{d['parent'] or '(top)'} |")
                    shown += 1
                if shown >= 25:
                    break
            w("")
            # --- phases (tracer)
            spans = {}
            mains = []
            for _ in range(a.runs):
                args, td = st.args(verb)
                logf = tempfile.TemporaryFile(dir=root)
                fd = logf.fileno()
                os.set_inheritable(fd, True)
                tr = [py, "-I", "-S", "-c", TRACER, str(fd), ":".join(paths),
                      "--root", os.path.join(root, "ocirt"), *args]
                # no pipes: a parked init would hold them open and run() would wait forever
                errf = tempfile.TemporaryFile(dir=root)
                t0 = time.perf_counter_ns()
                p = subprocess.run(tr, pass_fds=(fd,), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=errf)
                wall = time.perf_counter_ns() - t0
                errf.seek(0)
                p.stderr = errf.read()
                errf.close()
                td()
                logf.seek(0)
                recs = []
                for ln in logf.read().decode(errors="replace").splitlines():
                    pp = ln.split(" ", 5)
                    if len(pp) == 6:
                        recs.append((int(pp[0]), pp[1], int(pp[2]), int(pp[3]), int(pp[4]), pp[5]))
                logf.close()
                if p.returncode != 0:
                    w(f"(traced {verb} failed: {p.stderr.decode(errors='replace').strip()[-200:]})")
                    continue
                pids = []
                for r_ in recs:
                    if r_[0] not in pids:
                        pids.append(r_[0])
                role = {pid: ("main" if i == 0 else f"child{i}") for i, pid in enumerate(pids)}
                ms = [r_ for r_ in recs if r_[1] == "mark"]
                t_start = min(r_[3] for r_ in ms if r_[5] == "main-start") if ms else t0
                t_end = max(r_[3] for r_ in ms if r_[5] == "main-end") if ms else t0 + wall
                mains.append((wall, t_start - t0, t_end - t_start))
                # a forked child inherits the depth of its parent's stack at fork time
                mind = {}
                for pid, kind, d, a0, a1, name in recs:
                    if kind != "mark":
                        mind[pid] = min(mind.get(pid, d), d)
                for pid, kind, d, a0, a1, name in recs:
                    if kind == "mark":
                        continue
                    d -= mind.get(pid, 0)
                    key = (role[pid], kind, name, d)
                    spans.setdefault(key, {}).setdefault(len(mains), 0)
                    spans[key][len(mains)] += a1 - a0
            if mains:
                wall_m = med([m[0] for m in mains])
                pre = med([m[1] for m in mains])
                inmain = med([m[2] for m in mains])
                w(f"Phases (every ocirt function wrapped; traced wall {wall_m / 1e6:.1f} ms): "
                  f"interpreter start until main() {pre / 1e6:.1f} ms, main() {inmain / 1e6:.1f} "
                  f"ms, exit after main {max(wall_m - pre - inmain, 0) / 1e6:.1f} ms. "
                  f"Inclusive time per call site, depth ≤ {a.depth}, ≥ 0.3 ms "
                  "(main = the ocirt command; child1 = intermediate, child2 = init, "
                  "in order of first record):")
                w("")
                w("| process | depth | what | ms |")
                w("| --- | --- | --- | --- |")
                n = len(mains)
                rows = []
                for (rl, kind, name, d), per in spans.items():
                    vals = [per.get(i + 1, 0) for i in range(n)]
                    m = med(vals)
                    if d <= a.depth and m >= 300_000:
                        rows.append((rl, d, ("import " if kind == "import" else "") + name, m))
                # order: process, then by first appearance is lost; sort by process, depth, -ms
                for rl, d, name, m in sorted(rows, key=lambda x: (x[0], x[1], -x[3]))[:120]:
                    w(f"| {rl} | {d} | {'· ' * d}{name} | {m / 1e6:.2f} |")
                w("")
            # --- strace
            if strace:
                args, td = st.args(verb)
                out = os.path.join(root, "strace.txt")
                sp = subprocess.Popen([strace, "-f", "-c", "-o", out, ocirt,
                                       "--root", os.path.join(root, "ocirt"), *args],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
                if verb == "create":
                    # strace -f waits for the parked init too: wait for the create
                    # command itself, then tear down (which kills the init)
                    _wait_tracee(sp.pid)
                td()
                sp.wait(60)
                sc = parse_strace_c(out)
                tot_calls = sum(v[1] for v in sc.values())
                top = sorted(sc.items(), key=lambda kv: -kv[1][1])[:14]
                w(f"Syscalls (strace -f -c, one run, all processes): {tot_calls} calls. "
                  "Most frequent: " + ", ".join(f"{k} {v[1]}" + (f" ({v[2]} failed)" if v[2] else "")
                                               for k, v in top) + ".")
                keys = ("clone", "clone3", "fork", "vfork", "execve", "wait4", "fsync",
                        "fdatasync", "mount", "umount2", "pivot_root", "unshare", "setns",
                        "flock", "rename", "connect", "accept4", "recvfrom", "recvmsg",
                        "sendmsg", "sendto", "openat", "openat2", "newfstatat", "getdents64",
                        "mmap", "munmap", "brk", "read")
                w("Selected: " + ", ".join(f"{k} {sc[k][1]}" for k in keys if k in sc) + ".")
                w("")
            # --- perf stat
            if perf:
                vals = {}
                for _ in range(max(3, a.runs // 2)):
                    args, td = st.args(verb)
                    out = os.path.join(root, "perf.csv")
                    subprocess.run([perf, "stat", "-x,", "-o", out, "-e",
                                    "task-clock,context-switches,cpu-migrations,page-faults", "--",
                                    ocirt, "--root", os.path.join(root, "ocirt"), *args],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                    td()
                    for k, v in parse_perf(out).items():
                        vals.setdefault(k, []).append(v)
                if vals:
                    w("perf stat (software counters; this VM has no hardware ones): " +
                      ", ".join(f"{k} {med(v):.1f}" for k, v in vals.items()) +
                      " (task-clock in ms of CPU over all processes).")
                    w("")
            harness.reap_orphans()
            print(f"profiled {verb}", file=sys.stderr)
    finally:
        for rt in ("ocirt", "runc"):
            d = os.path.join(root, rt)
            if os.path.isdir(d):
                for cid in os.listdir(d):
                    timed([ocirt if rt == "ocirt" else runc, "--root", d, "delete", "--force", cid])
        subprocess.run(["umount", "-l", root])
        shutil.rmtree(root, ignore_errors=True)
        harness.reap_orphans()
    text = "\n".join(L) + "\n"
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
