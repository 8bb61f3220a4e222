"""ocirt.state: the state directory, state.json, status derived from the live
process (pid + start time), the OCI state view."""
import json
import os
import time

import pytest

from ocirt import state as st
from ocirt.errors import ContainerNotFound, OcirtError


def make(tmp_path, cid="c1", pid=0, annotations=None, **own):
    c = st.Record(str(tmp_path), cid)
    c.make_dir()
    c.state = st.State(cid, "/b", "/b/rootfs", "2024-01-01T00:00:00.000000000Z",
                       annotations, **own)
    c.state.pid = pid
    c.save()
    return c


def test_make_dir_and_save_load(tmp_path):
    c = make(tmp_path, annotations={"k": "v"}, cgroup={"driver": "v2", "dir": "/x"})
    c.unlock()
    d = st.Record(str(tmp_path), "c1")
    data = d.load()
    assert data.id == "c1" and data.annotations == {"k": "v"}
    assert data.cgroup == {"driver": "v2", "dir": "/x"} and data.init_start is None
    assert oct(os.stat(tmp_path / "c1").st_mode & 0o777) == "0o711"
    with open(tmp_path / "c1" / "state.json") as f:
        doc = json.load(f)
    # the OCI fields at the top (no status: derived), ocirt's own last
    assert list(doc) == ["ociVersion", "id", "pid", "bundle", "rootfs", "created", "owner",
                         "annotations", "ocirt"]
    assert doc["ocirt"]["version"] == st.VERSION
    assert not (tmp_path / "c1" / "state.json.tmp").exists()


def test_a_record_of_another_version_is_refused_by_name(tmp_path):
    c = make(tmp_path)
    c.unlock()
    p = tmp_path / "c1" / "state.json"
    doc = json.loads(p.read_text())
    doc["ocirt"]["version"] = 1
    p.write_text(json.dumps(doc))
    with pytest.raises(OcirtError, match="another ocirt version"):
        st.Record(str(tmp_path), "c1").load()


def test_make_dir_twice_is_id_in_use(tmp_path):
    make(tmp_path).unlock()
    with pytest.raises(OcirtError, match="c1 already exists"):
        st.Record(str(tmp_path), "c1").make_dir()


def test_make_dir_creates_root(tmp_path):
    root = tmp_path / "deep" / "root"
    st.Record(str(root), "x").make_dir()
    assert (root / "x").is_dir()


def test_load_missing(tmp_path):
    with pytest.raises(ContainerNotFound, match="container nope does not exist"):
        st.Record(str(tmp_path), "nope").load()


def test_lock_missing(tmp_path):
    with pytest.raises(ContainerNotFound):
        st.Record(str(tmp_path), "nope").lock()


def test_load_corrupt(tmp_path):
    c = make(tmp_path)
    with open(os.path.join(c.dir, "state.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(OcirtError, match="corrupt"):
        st.Record(str(tmp_path), "c1").load()


def test_remove_dir(tmp_path):
    c = make(tmp_path)
    c.remove_dir()
    assert not (tmp_path / "c1").exists()
    assert st.list_ids(str(tmp_path)) == []


def test_list_ids(tmp_path):
    for cid in ("b", "a", "c"):
        make(tmp_path, cid).unlock()
    (tmp_path / "stray-file").write_text("x")
    assert st.list_ids(str(tmp_path)) == ["a", "b", "c"]
    assert st.list_ids(str(tmp_path / "missing")) == []


# --- status ----------------------------------------------------------------------

def test_status_stopped_without_pid(tmp_path):
    assert make(tmp_path).status() == "stopped"


def test_status_running(tmp_path):
    me = os.getpid()
    c = make(tmp_path, pid=me, init_start=st.proc_start_time(me)[0])
    assert c.status() == "running"


def test_status_created_while_exec_sock_exists(tmp_path):
    me = os.getpid()
    c = make(tmp_path, pid=me, init_start=st.proc_start_time(me)[0])
    open(os.path.join(c.dir, "exec.sock"), "w").close()
    assert c.status() == "created"


def test_status_stopped_when_pid_recycled(tmp_path):
    """Same pid, another start time: not our init any more."""
    me = os.getpid()
    c = make(tmp_path, pid=me, init_start=st.proc_start_time(me)[0] + 1)
    assert c.status() == "stopped"


def test_status_stopped_when_process_gone(tmp_path):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert make(tmp_path, pid=pid, init_start=1).status() == "stopped"


def test_zombie_is_not_alive():
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    try:
        deadline = time.monotonic() + 5
        while st.proc_start_time(pid)[1] != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        start, letter = st.proc_start_time(pid)
        assert letter == "Z"
        assert not st.process_alive(pid, start)
    finally:
        os.waitpid(pid, 0)


def test_proc_start_time_of_self():
    start, letter = st.proc_start_time(os.getpid())
    assert isinstance(start, int) and start > 0
    assert letter in ("R", "S")
    assert st.proc_start_time(2 ** 22 + 12345) == (None, None)


def test_process_alive_without_start_time():
    assert st.process_alive(os.getpid(), None)


# --- the OCI view -----------------------------------------------------------------

def test_oci_state_running(tmp_path):
    me = os.getpid()
    c = make(tmp_path, pid=me, init_start=st.proc_start_time(me)[0],
             annotations={"a": "b"}, host_mounts=True)
    s = c.oci_state()
    assert s["ociVersion"] == st.OCI_VERSION and s["id"] == "c1"
    assert s["status"] == "running" and s["pid"] == me
    assert s["bundle"] == "/b" and s["annotations"] == {"a": "b"}
    assert list(s) == ["ociVersion", "id", "status", "pid", "bundle", "rootfs", "created",
                       "owner", "annotations"]


def test_oci_state_stopped_has_pid_0_and_no_empty_annotations(tmp_path):
    s = make(tmp_path, pid=2 ** 22 + 7, init_start=1).oci_state()
    assert s["status"] == "stopped" and s["pid"] == 0
    assert "annotations" not in s


def test_oci_state_matches_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "spec", "state-schema.json")) as f:
        schema = json.load(f)
    me = os.getpid()
    c = make(tmp_path, pid=me, init_start=st.proc_start_time(me)[0])
    jsonschema.validate(c.oci_state(), schema)


def test_default_root(monkeypatch):
    if os.geteuid() == 0:
        assert st.default_root() == "/run/user/0/ocirt"
    else:
        monkeypatch.setenv("XDG_RUNTIME_DIR", "/xdg")
        assert st.default_root() == "/xdg/ocirt"


def test_every_field_survives_the_round_trip():
    """from_json spells the fields out (list reads a thousand records): it must know
    every one of State.OCI and State.OWN."""
    own = {"init_start": 7, "freezer": ["/f", "1"], "cgroup": {"driver": "v2", "dir": "/d"},
           "host_mounts": True, "rootfs_bind": True, "hooks_poststop": [{"path": "/a"}],
           "hooks_poststart": [{"path": "/b"}], "exec": {"namespaces": ["pid"]},
           "intelrdt": {"path": "/r"}, "netdevices": {"eth0": {"name": "x"}}}
    assert set(own) == set(st.State.OWN)
    s = st.State("c1", "/b", "/b/r", "2024-01-01T00:00:00Z", {"k": "v"}, **own)
    s.pid, s.owner = 42, "u"
    t = st.State.from_json(s.to_json())
    for attr, _ in st.State.OCI:
        assert getattr(t, attr) == getattr(s, attr), attr
    for k in st.State.OWN:
        assert getattr(t, k) == getattr(s, k), k
