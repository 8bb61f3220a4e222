"""ocirt.api.run_measured, the judge's one call (docs/api.md), run for real: the docs'
judge loop, each verdict field, stdio, and nothing left behind on any path (normal
exit, OOM kill, wall limit, config error, a bad stdout, KeyboardInterrupt)."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time


from helpers import REPO

PY = os.path.join(REPO, ".venv", "bin", "python")


def _judge_example():
    text = open(os.path.join(REPO, "docs", "api.md")).read()
    return re.findall(r"```python\n(.*?)```", text, re.S)[1]


def _py(script, ocirt, bundle, timeout=120, **popen):
    """`script` in a fresh interpreter with the API (a judge is its own process: it
    becomes a subreaper). Output through files: the container inherits them."""
    env = dict(os.environ, BUNDLE=bundle.path, OCIRT_ROOT=ocirt.root, PYTHONPATH=REPO,
               ROOTFS=bundle.rootfs, JUDGE_PREFIX=f"j-{ocirt.marker}")
    head = ("import json, os, sys\nfrom ocirt import api\nfrom ocirt.errors import "
            "ConfigError, OcirtError\nROOT = os.environ['OCIRT_ROOT']\n"
            "B = os.environ['BUNDLE']\n")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        rc = subprocess.run([PY, "-c", head + script], env=env, stdin=subprocess.DEVNULL,
                            stdout=out, stderr=err, timeout=timeout, **popen).returncode
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess([], rc, out.read(), err.read())


def _result(r):
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


MEASURE = ("import dataclasses\nr = api.run_measured(os.environ['CID'], B, root=ROOT, **KW)\n"
           "print(json.dumps(dataclasses.asdict(r)))\n")


def measure(ocirt, bundle, kw="{}"):
    cid = ocirt.new_id()
    return cid, _py(f"KW = {kw}\nos.environ['CID'] = {cid!r}\n" + MEASURE, ocirt, bundle)


def no_process_with(word):
    left = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/environ", "rb") as f:
                    if word.encode() in f.read():
                        left.append(p)
            except OSError:
                pass
    return left == []


def test_docs_judge_example_runs(ocirt, bundle):
    r = _py(_judge_example(), ocirt, bundle)
    assert r.returncode == 0, r.stderr
    lines = dict(ln.split(": ", 1) for ln in r.stdout.splitlines())
    assert lines["hello"].startswith("ok: hello;"), r.stdout
    assert lines["memory-hog"].startswith("memory limit exceeded;"), r.stdout
    assert lines["busy-loop"].startswith("time limit exceeded;"), r.stdout
    assert not lines["fork-bomb"].startswith("ok"), r.stdout
    peak = re.search(r"pids (\w+)", lines["fork-bomb"]).group(1)
    assert peak == "None" or int(peak) == 16, r.stdout  # pids.limit held
    cpu = float(re.search(r"cpu ([\d.]+) s", lines["busy-loop"]).group(1))
    assert 1.0 < cpu < 2.6, r.stdout  # one CPU for the 2 s wall limit
    assert ocirt.state_dirs() == []
    assert no_process_with(f"JUDGE=j-{ocirt.marker}")


def test_normal_exit_and_its_figures(ocirt, bundle, tmp_path):
    bundle.args("sh", "-c", "head -c 20m /dev/zero > /dev/shm/x; rm /dev/shm/x; "
                "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3").write()
    bundle.linux["resources"] = {"memory": {"limit": 128 << 20}}
    bundle.write()
    cid, r = measure(ocirt, bundle)
    v = _result(r)
    assert v["exit_code"] == 3 and v["signal"] is None
    assert v["oom_killed"] is False and v["timed_out"] is False
    assert v["peak_memory"] >= 20 << 20
    assert v["cpu_user"] > 0 and v["cpu_system"] > 0
    assert 0 < v["wall_time"] < 30
    assert ocirt.state_dirs() == []


def test_oom_kill_is_counted_not_guessed(ocirt, bundle):
    bundle.args("sh", "-c", "exec tail /dev/zero")
    bundle.linux["resources"] = {"memory": {"limit": 32 << 20, "swap": 32 << 20}}
    bundle.write()
    v = _result(measure(ocirt, bundle)[1])
    assert v["oom_killed"] is True and v["signal"] == 9 and v["exit_code"] is None
    assert 24 << 20 <= v["peak_memory"] <= 33 << 20
    # a plain SIGKILL is not an OOM kill (no pid namespace: init may be killed by itself)
    bundle.config["linux"]["namespaces"] = [n for n in bundle.linux["namespaces"]
                                            if n["type"] != "pid"]
    bundle.args("sh", "-c", "kill -9 $$").write()
    v = _result(measure(ocirt, bundle)[1])
    assert v["signal"] == 9 and v["oom_killed"] is False


def test_wall_limit_kills_every_process_of_the_container(ocirt, bundle):
    # no pid namespace of its own: init's death would not take the others with it
    bundle.config["linux"]["namespaces"] = [n for n in bundle.linux["namespaces"]
                                            if n["type"] != "pid"]
    bundle.args("sh", "-c", "sleep 300 & sleep 300 & sleep 300").write()
    t = time.monotonic()
    v = _result(measure(ocirt, bundle, "{'wall_limit': 0.5}")[1])
    assert v["timed_out"] is True and v["signal"] == 9
    assert 0.5 <= v["wall_time"] < 10 and time.monotonic() - t < 30
    assert ocirt.state_dirs() == []
    assert no_process_with(f"OCIRT_TEST_MARKER={ocirt.marker}")


def test_stdio_path_file_fd_and_devnull(ocirt, bundle, tmp_path):
    inp = tmp_path / "in"
    inp.write_text("from stdin\n")
    # stdin from a path, stdout to an open file, stderr to an fd; tty_nr 0: no terminal
    bundle.args("sh", "-c", "cat; echo out; echo err >&2; "
                "cut -d ' ' -f 7 /proc/self/stat >&2").write()
    script = (f"f = open({str(tmp_path / 'out')!r}, 'w')\n"
              f"e = os.open({str(tmp_path / 'err')!r}, os.O_WRONLY | os.O_CREAT)\n"
              f"r = api.run_measured({ocirt.new_id()!r}, B, root=ROOT, stdin={str(inp)!r}, "
              "stdout=f, stderr=e)\nprint(r.exit_code)\n")
    r = _py(script, ocirt, bundle)
    assert r.returncode == 0 and r.stdout.strip() == "0", r.stderr
    assert (tmp_path / "out").read_text() == "from stdin\nout\n"
    assert (tmp_path / "err").read_text() == "err\n0\n"
    # None: /dev/null for all three (reading stdin gets EOF at once, nothing is printed)
    bundle.args("sh", "-c", "cat; for i in 0 1 2; do "
                "[ \"$(readlink /proc/$$/fd/$i)\" = /dev/null ] || exit 1; done").write()
    v = _result(measure(ocirt, bundle)[1])
    assert v["exit_code"] == 0


def test_config_error_names_the_field_and_leaves_nothing(ocirt, bundle):
    bundle.linux["resources"] = {"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}
    bundle.write()
    r = _py(f"try:\n    api.run_measured({ocirt.new_id()!r}, B, root=ROOT)\n"
            "except ConfigError as e:\n    print('field', e.path)\n", ocirt, bundle)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("field linux.resources.hugepageLimits"), r.stdout
    assert ocirt.state_dirs() == []


def test_a_bad_stdout_leaves_nothing(ocirt, bundle, tmp_path):
    for arg in ("io.StringIO()", "9999", repr(str(tmp_path / "no" / "such" / "file"))):
        r = _py(f"import io\ntry:\n    api.run_measured({ocirt.new_id()!r}, B, root=ROOT, "
                f"stdout={arg})\nexcept OcirtError as e:\n    print('error', e)\n",
                ocirt, bundle)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("error stdout"), r.stdout
    assert ocirt.state_dirs() == []


def test_keyboard_interrupt_during_the_wait_leaves_nothing(ocirt, bundle, tmp_path):
    bundle.args("sh", "-c", "sleep 300 & sleep 300").write()
    cid = ocirt.new_id()
    flag = tmp_path / "interrupted"
    # SIGINT's default handler first: from a background job the test inherits it ignored
    script = ("import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
              f"try:\n    api.run_measured({cid!r}, B, root=ROOT)\n"
              f"except KeyboardInterrupt:\n    open({str(flag)!r}, 'w').close()\n")
    env = dict(os.environ, OCIRT_ROOT=ocirt.root, BUNDLE=bundle.path, PYTHONPATH=REPO)
    head = "import os\nfrom ocirt import api\nROOT = os.environ['OCIRT_ROOT']\nB = os.environ['BUNDLE']\n"
    p = subprocess.Popen([PY, "-c", head + script], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not any(d == cid for d in ocirt.state_dirs()):
            assert time.monotonic() < deadline, "the container never appeared"
            time.sleep(0.05)
        time.sleep(0.3)  # started and waiting
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert flag.exists()
    assert ocirt.state_dirs() == []
    assert no_process_with(f"OCIRT_TEST_MARKER={ocirt.marker}")


def test_cli_usage_file_has_the_same_fields(ocirt, bundle, tmp_path):
    bundle.args("sh", "-c", "exit 4").write()
    u = tmp_path / "u.json"
    cid = ocirt.new_id()
    assert ocirt.run(cid, bundle, "--usage-file", str(u)).returncode == 4
    rep = json.loads(u.read_text())
    v = _result(measure(ocirt, bundle)[1])
    assert set(v) <= set(rep)
    assert rep["exit_code"] == 4 and rep["signal"] is None and rep["timed_out"] is False
    assert rep["wall_time"] > 0 and rep["oom_killed"] is False


def test_one_parse_per_call_and_no_heavy_imports(ocirt, bundle):
    """Issue 17: the judge's path reads the bundle's config once per call and loads
    neither jsonschema nor pyroute2."""
    script = ("from ocirt import config\nn = []\nload = config.load\n"
              "config.load = lambda b: n.append(b) or load(b)\n"
              f"for i in range(3):\n    api.run_measured({ocirt.new_id()!r} + str(i), B, "
              "root=ROOT)\n"
              "print(len(n), 'jsonschema' in sys.modules, 'pyroute2' in sys.modules)\n")
    r = _py(script, ocirt, bundle)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3", "False", "False"], r.stdout
