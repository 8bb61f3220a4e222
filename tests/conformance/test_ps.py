"""ocirt ps: the host pids of a container's processes (json: a JSON array, as
containerd's shim parses it; table: `ps` output restricted to them, as
`docker top` shows it)."""
import json

from helpers import assert_error


def _running(ocirt):
    b = ocirt.bundle(["sleep", "600"])
    cid = ocirt.new_id()
    ocirt.run(cid, b, "-d").ok()
    return cid, ocirt.state(cid)["pid"]


def test_json_lists_every_process(ocirt, tmp_path):
    cid, init = _running(ocirt)
    pf = tmp_path / "x.pid"
    ocirt("exec", "-d", "--pid-file", str(pf), cid, "sleep", "500").ok()
    other = int(pf.read_text())
    r = ocirt("ps", "--format", "json", cid).ok()
    pids = json.loads(r.stdout)
    assert isinstance(pids, list) and all(isinstance(p, int) for p in pids)
    assert sorted(pids) == sorted([init, other])
    assert r.stdout.strip() == json.dumps(sorted(pids), separators=(",", ":"))
    r = ocirt("ps", "-f", "json", cid).ok()
    assert sorted(json.loads(r.stdout)) == sorted([init, other])
    ocirt.delete(cid, "--force").ok()


def test_table_is_ps_output_of_those_pids(ocirt):
    cid, init = _running(ocirt)
    r = ocirt("ps", cid).ok()
    lines = r.stdout.splitlines()
    assert "PID" in lines[0].split() and "CMD" in lines[0].split()
    assert len(lines) == 2
    assert int(lines[1].split()[1]) == init and lines[1].endswith("sleep 600")
    r = ocirt("ps", cid, "--", "-o", "pid,comm").ok()
    assert r.stdout.split() == ["PID", "COMMAND", str(init), "sleep"]
    ocirt.delete(cid, "--force").ok()


def test_errors(ocirt):
    assert_error(ocirt("ps", "no-such-container-xyz"), "does not exist")
    cid, _ = _running(ocirt)
    assert_error(ocirt("ps", "--format", "yaml", cid), "--format")
    assert_error(ocirt("ps", cid, "--", "-o", "comm"), "PID")
    ocirt.delete(cid, "--force").ok()


def test_ps_of_a_stopped_container_is_empty(ocirt):
    """runc: ps after the container stopped succeeds with no processes."""
    cid, _ = _running(ocirt)
    ocirt.kill(cid, "KILL").ok()
    ocirt.wait_status(cid, "stopped")
    assert ocirt("ps", "--format", "json", cid).ok().stdout == "[]\n"
    r = ocirt("ps", cid).ok()
    assert len(r.lines) == 1 and "PID" in r.lines[0]
    ocirt.delete(cid).ok()
