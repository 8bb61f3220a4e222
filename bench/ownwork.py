"""ocirt's own work on `run`: `run` of /bin/true by two launchers (A, B) and
bench/pyfloor.py (the Python floor: start, shim, unshare, fork, chroot, exec, wait),
paired in one loop with runc; wall, user and sys ms. own = run - floor, pair by pair.

    AB_A=/old/checkout/.venv/bin/ocirt AB_B=.venv/bin/ocirt .venv/bin/python bench/ownwork.py [pairs]

(NORUNC=1 leaves runc out.) Needs root.
"""
import glob
import os
import shutil
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
from spawn import timed  # noqa: E402
import harness  # noqa: E402

B = os.environ.get("AB_B", os.path.join(REPO, ".venv", "bin", "ocirt"))
A = os.environ.get("AB_A", B)
work = "/tmp/ocirt-ownwork"; shutil.rmtree(work, ignore_errors=True); os.makedirs(work)
cfg = harness.ocirt_spec_config(B, work + "/spec")
bt = harness.write_bundle(work + "/true", cfg, ["/bin/true"])
rootfs = bt + "/rootfs"
py = os.path.join(REPO, ".venv", "bin", "python")
site = glob.glob(os.path.join(REPO, ".venv", "lib", "python3*", "site-packages"))[0]
floor = [py, "-I", "-S", os.path.join(REPO, "bench", "pyfloor.py"), rootfs, REPO, site]
roots = {"A": "/run/ocirt-ownwork-a", "B": "/run/ocirt-ownwork-b"}
cmds = {"A": lambda i: [A, "--root", roots["A"], "run", "-b", bt, f"r{i}"],
        "B": lambda i: [B, "--root", roots["B"], "run", "-b", bt, f"r{i}"],
        "floor": lambda i: floor,
        "runc": lambda i: ["/usr/sbin/runc", "--root", "/run/ocirt-ownwork-runc", "run", "-b", bt, f"r{i}"]}
if os.environ.get("NORUNC"): del cmds["runc"]
res = {k: [] for k in cmds}
N = int(sys.argv[1]) if len(sys.argv) > 1 else 30
keys = list(cmds)
for i in range(-2, N):
    order = keys if i % 2 == 0 else keys[::-1]
    for k in order:
        r = timed(cmds[k](i))
        assert r["rc"] == 0, (k, r["err"])
        if i >= 0: res[k].append((r["ns"]/1e6, r.get("user_ns", 0)/1e6, r.get("sys_ns", 0)/1e6))
    time.sleep(0.02)


def med(xs): return statistics.median(xs)
print(f"A={A}\nB={B}\nN={N}")
print("| what | wall | user | sys |\n|---|---|---|---|")
for k, v in res.items():
    print(f"| {k} | {med([x[0] for x in v]):.1f} | {med([x[1] for x in v]):.1f} | {med([x[2] for x in v]):.1f} |")
for k in ("A", "B"):
    for j, name in enumerate(("wall", "user", "sys")):
        own = [a[j] - f[j] for a, f in zip(res[k], res["floor"])]
        print(f"own {k} {name}: {med(own):.1f}")
ra = [ (b[0]-f[0])/(a[0]-f[0]) for a,b,f in zip(res["A"],res["B"],res["floor"]) ]
print("paired own B/A (wall):", round(med(ra),2))
if "runc" in res:
    print("B/runc wall:", round(med([b[0]/r[0] for b,r in zip(res["B"],res["runc"])]),2),
          "A/runc:", round(med([a[0]/r[0] for a,r in zip(res["A"],res["runc"])]),2))
