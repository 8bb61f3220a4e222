"""`run` of /bin/true phase by phase, in the create process, with little overhead: a
clock read around a few functions (config.load, the cgroup plan, spawn, the state
save, start, the wait, delete), and around the imports, instead of bench/profile.py's
wrapping of every function. Medians over N runs, each in a fresh interpreter started
as the entry script starts it (python -I -S, the module bundle).

    .venv/bin/python bench/phases.py [N]          # needs root and build/bench/bundle-true

The init's own work overlaps `spawn` (it runs meanwhile in its own process). The
cgroup primer (process/speed.py) is started first thing, as the C front would. Start the
bench once first (`bench/run.py --quick --sections latency`) for the bundle.
"""
import glob
import os
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITE = glob.glob(os.path.join(REPO, ".venv", "lib", "python3*", "site-packages"))[0]
BUNDLE = os.path.join(REPO, "build", "bench", "bundle-true")

CHILD = r'''
import sys, time
_now = time.perf_counter_ns
marks = [("start", _now())]
def mark(n): marks.append((n, _now()))
repo, site, root, bundle, cid, out_fd = sys.argv[1:7]
sys.path[:0] = [repo, site]
sys.argv = ["ocirt", "--root", root, "run", "-b", bundle, cid]
sys.argv[0] = "ocirt"
from ocirt._bundle import install
install(repo + "/.venv/lib/ocirt-modules.bundle"); mark("bundle installed")
# the C front starts the cgroup primer before Python; without the front it is a thread
# that spawn would wait for: start it here, as early as the front's would be
from ocirt.process import speed; speed.prime()
import ocirt.main, ocirt.cli.run, ocirt.lifecycle.run as lr, ocirt.process.init
mark("imports")
from ocirt import config, state, syscalls
from ocirt.container import Container
from ocirt.lifecycle import create as cr
def wrap(owner, name, label):
    f = getattr(owner, name)
    def w(*a, **k):
        t = _now()
        try:
            return f(*a, **k)
        finally:
            marks.append((label, t, _now()))
    setattr(owner, name, w)
wrap(syscalls, "impl", "load the shim"); wrap(config, "load", "config.load")
wrap(cr, "_cgroup", "plan the cgroup"); wrap(cr, "spawn", "spawn (fork .. init ready)")
wrap(state.Record, "save", "save state"); wrap(lr, "start", "start (the process runs)")
wrap(lr, "_wait_for", "wait for the process"); wrap(Container, "delete", "delete")
rc = ocirt.main.main(); mark("main(), all of it")
import os
t0 = marks[0][1]
out = []
for m in marks:
    out.append(f"{m[0]}\t{(m[-1] - (m[1] if len(m) == 3 else t0)) / 1e6:.3f}\t{len(m)}")
os.write(int(out_fd), ("\n".join(out) + "\n").encode())
os._exit(rc or 0)
'''


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    root = tempfile.mkdtemp(prefix="ocirt-phases-", dir="/run")
    runs = []
    for i in range(n + 2):
        r, w = os.pipe()
        p = subprocess.run([os.path.join(REPO, ".venv", "bin", "python"), "-I", "-S", "-c", CHILD,
                            REPO, SITE, root, BUNDLE, f"ph{i}", str(w)], pass_fds=(w,),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        os.close(w)
        data = os.read(r, 65536).decode()
        os.close(r)
        if p.returncode != 0:
            sys.exit(f"run failed: {p.stderr.decode()[-500:]}")
        if i >= 2:  # warm-up
            runs.append(data)
    os.rmdir(root)
    table = {}
    order = []
    for data in runs:
        seen = {}
        prev = 0.0
        for line in data.splitlines():
            name, ms, kind = line.split("\t")
            ms = float(ms)
            if kind == "2":  # a point: time since the previous point
                ms, prev = ms - prev, ms
            seen[name] = seen.get(name, 0.0) + ms
        for k, v in seen.items():
            if k not in table:
                order.append(k)
            table.setdefault(k, []).append(v)
    print(f"| phase (median of {n}, ms) | ms |\n| --- | --- |")
    for k in order:
        if k != "start":
            print(f"| {k} | {statistics.median(table[k]):.2f} |")


if __name__ == "__main__":
    main()
