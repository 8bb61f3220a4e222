"""ocirt.api: the library under the CLI (docs/api.md), run for real."""
import os
import re
import subprocess
import sys

import pytest

from helpers import REPO

PY = os.path.join(REPO, ".venv", "bin", "python")


def _example():
    text = open(os.path.join(REPO, "docs", "api.md")).read()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def test_docs_example_runs(ocirt, bundle):
    """The example in docs/api.md runs as written, and the CLI sees what it did."""
    bundle.args("sh", "-c", "exit 7").write()
    env = dict(os.environ, BUNDLE=bundle.path, OCIRT_ROOT=ocirt.root, PYTHONPATH=REPO)
    r = subprocess.run([PY, "-c", _example()], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("exit status 7") == 2, r.stdout
    assert "error: container no-such-container does not exist" in r.stdout
    assert "error: invalid container id 'bad/id'" in r.stdout
    assert ocirt("list", "-q").ok().stdout == ""


def _api(script, ocirt, bundle):
    """Run `script` with the API in a fresh interpreter. Its output goes through files:
    a container it creates inherits its stdio and would hold a pipe open."""
    import tempfile
    env = dict(os.environ, BUNDLE=bundle.path, OCIRT_ROOT=ocirt.root, PYTHONPATH=REPO)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        rc = subprocess.run([PY, "-c", "import os\nfrom ocirt import api\n"
                             "from ocirt.errors import ConfigError, OcirtError\n"
                             "ROOT = os.environ['OCIRT_ROOT']\nB = os.environ['BUNDLE']\n"
                             + script], env=env, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=err, timeout=120).returncode
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess([], rc, out.read(), err.read())


def test_api_and_cli_share_state(ocirt, bundle):
    """A container the API creates is seen, started and deleted by the CLI."""
    bundle.args("sleep", "600").write()
    cid = ocirt.new_id()
    r = _api(f"print(api.create({cid!r}, B, root=ROOT))", ocirt, bundle)
    assert r.returncode == 0, r.stderr
    pid = int(r.stdout)
    st = ocirt.state(cid)
    assert st["status"] == "created" and st["pid"] == pid
    ocirt.start(cid).ok()
    assert ocirt.state(cid)["status"] == "running"
    r = _api(f"api.kill({cid!r}, 'KILL', root=ROOT)", ocirt, bundle)
    assert r.returncode == 0, r.stderr
    import time
    deadline = time.time() + 10
    while ocirt.state(cid)["status"] != "stopped" and time.time() < deadline:
        time.sleep(0.05)
    assert ocirt.state(cid)["status"] == "stopped"
    r = _api(f"api.delete({cid!r}, root=ROOT)", ocirt, bundle)
    assert r.returncode == 0, r.stderr
    assert ocirt("list", "-q").ok().stdout == ""


def test_api_config_error_names_the_field(ocirt, bundle):
    bundle.config["process"]["cwd"] = "relative/dir"
    bundle.write()
    r = _api("try:\n    api.create('c1', B, root=ROOT)\nexcept ConfigError as e:\n"
             "    print(e.path, '|', e)\n", ocirt, bundle)
    assert r.returncode == 0, r.stderr
    path, _, msg = r.stdout.strip().partition(" | ")
    assert path == "process.cwd" and msg.startswith("process.cwd:"), r.stdout
    assert ocirt("list", "-q").ok().stdout == ""
