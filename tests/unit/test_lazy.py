"""Laziness lives in ocirt/lazy.py only: no import inside a function elsewhere in
ocirt (the few functions that can't be a stand-in are named below), every stand-in
names a module that exists, and a stand-in loads its module on first use only."""
import ast
import importlib.util
import os
import subprocess
import sys

from ocirt import lazy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PKG = os.path.join(REPO, "ocirt")

# (module path, function): the imports a stand-in can't replace (lazy.py says why)
ALLOWED = {
    ("ocirt/seccomp.py", "_pyseccomp"),
    ("ocirt/config.py", "_sha256"),
    ("ocirt/jsonfast.py", "loads"),
    ("ocirt/_launcher.py", "write"),
    ("ocirt/_shim/build.py", "rules_header"),
}


def _function_imports():
    found = []
    for dirpath, dirnames, files in os.walk(PKG):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for fn in files:
            if not fn.endswith(".py"):
                continue
            path = os.path.join(dirpath, fn)
            rel = os.path.relpath(path, REPO)
            tree = ast.parse(open(path).read())

            def visit(node, func):
                for ch in ast.iter_child_nodes(node):
                    if isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        visit(ch, ch.name)
                    elif isinstance(ch, (ast.Import, ast.ImportFrom)) and func:
                        found.append((rel, func, ch.lineno))
                    else:
                        visit(ch, func)
            visit(tree, None)
    return found


def test_no_import_inside_a_function_but_the_named_ones():
    stray = [f"{p}:{line} in {f}()" for p, f, line in _function_imports()
             if (p, f) not in ALLOWED and p != "ocirt/lazy.py"]
    assert stray == [], "import it at module level, or from ocirt.lazy: " + ", ".join(stray)


def test_the_named_exceptions_still_exist():
    have = {(p, f) for p, f, _ in _function_imports()}
    assert ALLOWED <= have, ALLOWED - have


def test_every_stand_in_names_a_module():
    mods = {k: v for k, v in vars(lazy).items() if isinstance(v, lazy.Module)}
    assert len(mods) > 40
    for attr, m in mods.items():
        assert importlib.util.find_spec(m._name) is not None, (attr, m._name)


def test_one_stand_in_per_module():
    names = [v._name for v in vars(lazy).values() if isinstance(v, lazy.Module)]
    assert len(names) == len(set(names))


def test_a_stand_in_loads_on_first_use_and_need_loads_now():
    code = """
import sys
from ocirt import lazy
from ocirt.lazy import terminal, usage
assert "ocirt.terminal" not in sys.modules and "ocirt.usage" not in sys.modules
assert "lazy ocirt.terminal>" in repr(terminal)
terminal.copy_size
assert "ocirt.terminal" in sys.modules and "loaded" in repr(terminal)
lazy.need(usage)
assert "ocirt.usage" in sys.modules
import ocirt.usage
assert usage.write_report is ocirt.usage.write_report
print("ok")
"""
    p = subprocess.run([sys.executable, "-I", "-c", code], cwd=REPO, capture_output=True,
                       text=True, timeout=60)
    assert p.stdout.strip() == "ok", p.stderr
