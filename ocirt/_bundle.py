"""All of ocirt's compiled modules in one file, for the `ocirt` entry script.

Importing a module the usual way costs ~60 us of importlib's path search, stat
calls, open and read of its .pyc, on top of running its code; a create imports
about 35 of ours, every time the command runs. The entry script (ocirt/_launcher.py)
instead puts a finder in front of sys.meta_path that serves them from one file,
read once: an index (name -> path, package?, source mtime and size, offset and
length) and the marshalled code objects after it.

A module whose source changed since the bundle was written (its mtime or size
differ) is not served: the usual import finds it, so an edited checkout never runs
stale code. Any problem with the file itself means no finder at all.
"""
import marshal
import sys
from _frozen_importlib import ModuleSpec  # loaded at start-up: costs nothing
from posix import stat
import os

MAGIC = b"ocirt-bundle-1\n"


def build(pkg_dir, dest):
    """Write the bundle of every module under `pkg_dir` (the ocirt package)."""
    pkg_dir = os.path.abspath(pkg_dir)
    top = os.path.basename(pkg_dir)
    index, blobs, offset = {}, [], 0
    for dirpath, dirnames, files in os.walk(pkg_dir):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(files):
            if not fn.endswith(".py"):
                continue
            path = os.path.join(dirpath, fn)
            rel = os.path.relpath(path, os.path.dirname(pkg_dir))[:-3].split(os.sep)
            is_pkg = rel[-1] == "__init__"
            name = ".".join(rel[:-1] if is_pkg else rel)
            with open(path, "rb") as f:
                src = f.read()
            st = os.stat(path)
            code = marshal.dumps(compile(src, path, "exec", dont_inherit=True))
            index[name] = (path, is_pkg, st.st_mtime_ns, st.st_size, offset, len(code))
            blobs.append(code)
            offset += len(code)
    assert top in index
    head = marshal.dumps(index)
    tmp = f"{dest}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(MAGIC + len(head).to_bytes(8, "little") + head + b"".join(blobs))
    os.replace(tmp, dest)


class Finder:
    """A sys.meta_path finder and loader over one bundle file."""

    def __init__(self, data):
        n = len(MAGIC)
        if data[:n] != MAGIC:
            raise ValueError("not an ocirt bundle")
        size = int.from_bytes(data[n:n + 8], "little")
        self.index = marshal.loads(data[n + 8:n + 8 + size])
        self.data = memoryview(data)[n + 8 + size:]  # the only reference to `data`

    def find_spec(self, name, path=None, target=None):
        entry = self.index.get(name)
        if entry is None:
            return None
        fpath, is_pkg, mtime, size = entry[:4]
        try:
            st = stat(fpath)
        except OSError:
            return None
        if st.st_mtime_ns != mtime or st.st_size != size:
            return None  # edited since: the usual import finds the source
        spec = ModuleSpec(name, self, origin=fpath, is_package=is_pkg)
        if is_pkg:
            spec.submodule_search_locations = [fpath.rpartition("/")[0]]
        spec.has_location = True  # sets __file__
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        _p, _k, _m, _s, off, length = self.index[module.__name__]
        exec(marshal.loads(self.data[off:off + length]), module.__dict__)


def install(path):
    """Serve ocirt's modules from the bundle at `path`; False (and nothing
    changed) if it can't be read."""
    try:
        with open(path, "rb") as f:
            finder = Finder(f.read())
    except (OSError, ValueError, EOFError, TypeError):
        return False
    sys.meta_path.insert(0, finder)
    return True


def release():
    """Drop the bundle (before forking a process that stays, like init: its ~0.6 MiB
    would stay resident there); later imports take the usual way."""
    for finder in [f for f in sys.meta_path if isinstance(f, Finder)]:
        sys.meta_path.remove(finder)
        try:
            finder.data.release()
        except BufferError:
            pass  # a slice still alive: the memory goes when it does
        finder.data = finder.index = None
