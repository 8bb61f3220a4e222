"""The hot path's imports: `run` of runc spec's config loads no more modules than it
did before the redesign (issue 16: 67 on Debian 12's Python 3.11, the schema verdict
cached), none of the heavy ones, and everything init needs before the fork."""
import os
import subprocess

from helpers import REPO

PY = os.path.join(REPO, ".venv", "bin", "python")
BASELINE = 67  # modules `run` imported at df3b48a, before the container model
HEAVY = ("jsonschema", "pyroute2", "pyseccomp", "prctl", "jeepney", "enum", "dataclasses",
         "subprocess", "re", "socket", "selectors", "inspect", "typing", "json")


def imported(ocirt, bundle):
    code = ("import sys; sys.path[:0] = [%r, %r]; sys.argv = ['ocirt', '--root', %r, "
            "'run', '-b', %r, sys.argv[1]]; from ocirt.main import main; "
            "sys.exit(main())") % (REPO, _site(), ocirt.root, bundle.path)
    p = subprocess.run([PY, "-I", "-S", "-X", "importtime", "-c", code, ocirt.new_id()],
                       capture_output=True, text=True, timeout=60, env=ocirt.env())
    assert p.returncode == 0, p.stderr[-2000:]
    return sorted(ln.split("|")[2].strip() for ln in p.stderr.splitlines()
                  if ln.startswith("import time:") and "|" in ln
                  and not ln.split("|")[2].strip().startswith("imported package"))


def _site():
    import glob
    return glob.glob(os.path.join(REPO, ".venv", "lib", "python3*", "site-packages"))[0]


def test_run_imports_no_more_than_before(ocirt, bundle):
    imported(ocirt, bundle)  # the first run may validate the schema (then cached)
    mods = imported(ocirt, bundle)
    assert len(mods) <= BASELINE, f"{len(mods)} modules: {' '.join(mods)}"
    heavy = [m for m in mods if m.split(".")[0] in HEAVY]
    assert heavy == [], heavy
