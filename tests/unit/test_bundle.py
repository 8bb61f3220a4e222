"""ocirt/_bundle.py: the entry script's one-file module store serves what it holds,
never a module edited since it was written, and nothing from a bad file."""
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def pkg(tmp_path):
    """A package `bpkg` with a submodule and a subpackage, and its bundle."""
    root = tmp_path / "src"
    (root / "bpkg" / "sub").mkdir(parents=True)
    (root / "bpkg" / "__init__.py").write_text("WHO = 'init'\n")
    (root / "bpkg" / "mod.py").write_text("WHO = 'mod v1'\n")
    (root / "bpkg" / "sub" / "__init__.py").write_text("")
    (root / "bpkg" / "sub" / "leaf.py").write_text("from .. import mod\nWHO = 'leaf'\n")
    sys.path.insert(0, REPO)
    try:
        from ocirt import _bundle
    finally:
        sys.path.remove(REPO)
    bundle = tmp_path / "b.bundle"
    _bundle.build(str(root / "bpkg"), str(bundle))
    return root, bundle


def _probe(root, bundle, code):
    """Run `code` in a fresh -I -S interpreter after install(bundle)."""
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{REPO!r}, {str(root)!r}]
        from ocirt._bundle import install, Finder
        print(install({str(bundle)!r}))
        def served(m):
            return isinstance(m.__spec__.loader, Finder)
    """) + textwrap.dedent(code)
    r = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_modules_come_from_the_bundle_with_their_real_paths(pkg):
    root, bundle = pkg
    out = _probe(root, bundle, """
        import bpkg.sub.leaf as leaf, bpkg.mod as mod, bpkg, bpkg.sub as sub
        print(served(leaf), served(mod), served(bpkg), served(sub))
        print(leaf.__file__ == bpkg.__path__[0] + "/sub/leaf.py", mod.WHO.split()[1])
        print(sub.__path__ == [bpkg.__path__[0] + "/sub"])
    """)
    assert out == ["True", "True", "True", "True", "True", "True", "v1", "True"]


def test_an_edited_module_is_imported_from_its_source(pkg):
    root, bundle = pkg
    (root / "bpkg" / "mod.py").write_text("WHO = 'mod v2, edited'\n")
    out = _probe(root, bundle, """
        import bpkg.mod as mod, bpkg.sub.leaf as leaf
        print(served(mod), mod.WHO.split()[1], served(leaf))
    """)
    assert out == ["True", "False", "v2,", "True"]


@pytest.mark.parametrize("content", [b"", b"not a bundle at all", b"ocirt-bundle-1\n\xff\xff"])
def test_a_bad_file_installs_nothing(pkg, content):
    root, bundle = pkg
    bundle.write_bytes(content)
    out = _probe(root, bundle, """
        import bpkg.mod as mod
        print(served(mod), mod.WHO)
    """)
    assert out[:2] == ["False", "False"]


def test_release_drops_the_finder(pkg):
    root, bundle = pkg
    out = _probe(root, bundle, """
        import bpkg
        from ocirt import _bundle
        _bundle.release()
        import bpkg.mod as mod
        print(served(bpkg), served(mod), any(isinstance(f, Finder) for f in sys.meta_path))
    """)
    assert out == ["True", "True", "False", "False"]


def test_the_entry_script_serves_ocirt_from_its_bundle():
    script = os.path.join(REPO, ".venv", "bin", "ocirt-py")
    with open(script) as f:
        text = f.read()
    assert "install(" in text, "ocirt/_launcher.py wrote no bundle line"
    bundle = text.split("install(")[1].split(")")[0].strip("'\"")
    assert os.path.getsize(bundle) > 100_000
    r = subprocess.run([sys.executable, "-I", "-S", "-c", text.split("from ocirt.main")[0]
                        + "import ocirt.config, ocirt.cgroups.v1 as v1\n"
                        "from ocirt._bundle import Finder\n"
                        "print(isinstance(v1.__spec__.loader, Finder))\n"],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "True", r
