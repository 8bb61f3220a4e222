"""Write the `ocirt` command: the C front (ocirt/_shim/front/) built for this
install, and beside it `ocirt-py`, the Python runtime's entry script, which the
front execs for everything it does not serve itself.

ocirt-py runs the venv's interpreter with -I -S (no site import: ~8 ms instead of
~29 ms) and an explicit sys.path, and imports ocirt's modules from one bundle file
written here (ocirt/_bundle.py). Without a C compiler, `ocirt` is that script.
"""
import os
import subprocess
import sys
import sysconfig

SHIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_shim")
FRONT_DIR = os.path.join(SHIM_DIR, "front")
FRONT_C = [os.path.join(FRONT_DIR, n) for n in ("main.c", "json.c", "record.c", "cgroup.c",
                                                "verbs.c")]


def script(paths, argv0=None, bundle=None):
    return (f"#!{sys.executable} -IS\n"
            "import sys\n"
            f"sys.path[:0] = {paths!r}\n"
            + (f"sys.argv[0] = {argv0!r}  # the command users run (the C front)\n"
               if argv0 else "")
            + ("from ocirt._bundle import install\n"
               f"install({bundle!r})  # ocirt's modules from one file (ocirt/_bundle.py)\n"
               if bundle else "")
            + "from ocirt.main import main\n"
            "rc = main()\n"
            "try:\n"
            "    sys.stdout.flush()\n"
            "    sys.stderr.flush()\n"
            "except OSError:\n"
            "    pass\n"
            "import os\n"
            "os._exit(rc if isinstance(rc, int) else 1)  # skip interpreter teardown\n")


def _install(path, text=None):
    """Make path.tmp (written now when text is given) executable, and rename it."""
    tmp = path + ".tmp"
    if text is not None:
        with open(tmp, "w") as f:
            f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)


def build_front(dest, py_script):
    """Compile the front (FRONT_C, with front.h beside them and rules.h in SHIM_DIR)
    into dest (static when libc.a is there). False if no compiler."""
    cc = os.environ.get("CC", "cc")
    tmp = dest + ".tmp"
    base = [cc, "-O2", "-Wall", "-s", f"-DOCIRT_PY=\"{py_script}\"", f"-I{SHIM_DIR}", "-o", tmp,
            *FRONT_C]
    for extra in (["-static"], []):
        try:
            r = subprocess.run(base + extra, capture_output=True, text=True)
        except OSError:
            return False
        if r.returncode == 0:
            _install(dest)
            return True
    sys.stderr.write(f"ocirt: cannot build the C front ({r.stderr.strip()[:300]}); "
                     "`ocirt` is the Python entry script alone\n")
    return False


def write(dest, extra_paths=()):
    dest = os.path.abspath(dest)
    site = sysconfig.get_paths()["purelib"]
    paths = [os.path.abspath(p) for p in extra_paths] + [site]
    py = dest + "-py"
    bundle = os.path.join(sys.prefix, "lib", "ocirt-modules.bundle")
    try:
        from ocirt import _bundle
    except ImportError:  # run as a script from a tree not on sys.path: its own dir is
        import _bundle
    _bundle.build(os.path.dirname(os.path.abspath(__file__)), bundle)
    _install(py, script(paths, argv0=dest, bundle=bundle))
    if os.environ.get("OCIRT_NO_FRONT") == "1" or not build_front(dest, py):
        _install(dest, script(paths, bundle=bundle))


if __name__ == "__main__":
    write(sys.argv[1], sys.argv[2:])
