"""Write the `ocirt` entry script: the venv's interpreter with -I -S (no site
import: ~8 ms instead of ~29 ms) and an explicit sys.path."""
import os
import sys
import sysconfig


def write(dest, extra_paths=()):
    site = sysconfig.get_paths()["purelib"]
    paths = [os.path.abspath(p) for p in extra_paths] + [site]
    text = (f"#!{sys.executable} -IS\n"
            "import sys\n"
            f"sys.path[:0] = {paths!r}\n"
            "from ocirt.main import main\n"
            "rc = main()\n"
            "try:\n"
            "    sys.stdout.flush()\n"
            "    sys.stderr.flush()\n"
            "except OSError:\n"
            "    pass\n"
            "import os\n"
            "os._exit(rc if isinstance(rc, int) else 1)  # skip interpreter teardown\n")
    tmp = dest + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)


if __name__ == "__main__":
    write(sys.argv[1], sys.argv[2:])
