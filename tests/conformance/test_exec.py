"""ocirt exec: a new process in a running container joins all of its namespaces
(user first, pid through a fork) and its cgroup, gets the container's
capabilities, seccomp filter, rlimits, user and no_new_privs unless overridden,
and its exit status is returned. runc's flags; --process files as containerd
writes them.
"""
import json
import os
import signal
import subprocess

import pytest

from helpers import assert_error, ns_inode, pid_alive, proc_status, wait_for

SLEEP = ["sleep", "600"]
NS = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt",
      "cgroup": "cgroup"}


def running(ocirt, bundle=None, **cfg):
    b = bundle or ocirt.bundle(SLEEP)
    b.args(*SLEEP)
    for k, v in cfg.items():
        b.process[k] = v
    b.write()
    cid = ocirt.new_id()
    ocirt.run(cid, b, "-d").ok()
    return cid, ocirt.state(cid)["pid"]


def exec_detached(ocirt, cid, tmp_path, *argv, flags=()):
    pf = tmp_path / f"exec-{len(os.listdir(tmp_path))}.pid"
    ocirt("exec", "-d", "--pid-file", str(pf), *flags, cid, *argv).ok()
    pid = int(pf.read_text())
    ocirt.pids.add(pid)
    return pid


def test_joins_every_namespace_and_the_cgroup(ocirt, tmp_path):
    b = ocirt.bundle(SLEEP)
    types = [n["type"] for n in b.linux["namespaces"]]
    cid, init = running(ocirt, b)
    pid = exec_detached(ocirt, cid, tmp_path, "sleep", "600")
    for t in types:
        if t in NS:
            assert ns_inode(pid, NS[t]) == ns_inode(init, NS[t]), f"{t} namespace differs"
    with open(f"/proc/{pid}/cgroup") as f1, open(f"/proc/{init}/cgroup") as f2:
        assert f1.read() == f2.read()
    ocirt.delete(cid, "--force").ok()
    assert not pid_alive(pid)


def test_pid_namespace_through_a_fork(ocirt):
    cid, _init = running(ocirt)
    r = ocirt("exec", cid, "sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '").ok()
    mypid, init_cmd = r.stdout.splitlines()
    assert int(mypid) > 1
    assert init_cmd.strip() == "sleep 600"
    ocirt.delete(cid, "--force").ok()


def test_exit_status_is_returned(ocirt):
    cid, _ = running(ocirt)
    assert ocirt("exec", cid, "sh", "-c", "exit 42").returncode == 42
    assert ocirt("exec", cid, "sh", "-c", "kill -TERM $$").returncode == 128 + 15
    assert ocirt("exec", cid, "true").returncode == 0
    ocirt.delete(cid, "--force").ok()


def test_gets_the_containers_capabilities_rlimits_user_and_nnp(ocirt, tmp_path):
    b = ocirt.bundle(SLEEP)
    b.process["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5]}
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 777, "hard": 888}]
    b.process["noNewPrivileges"] = True
    cid, init = running(ocirt, b)
    pid = exec_detached(ocirt, cid, tmp_path, "sleep", "600")
    si, se = proc_status(init), proc_status(pid)
    for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Uid", "Gid",
              "Groups"):
        assert se[k] == si[k], k
    with open(f"/proc/{pid}/limits") as f:
        lim = [l for l in f if l.startswith("Max open files")][0].split()
    assert lim[3:5] == ["777", "888"]
    ocirt.delete(cid, "--force").ok()


def test_overrides_user_env_cwd_caps_nnp(ocirt):
    b = ocirt.bundle(SLEEP)
    b.process["noNewPrivileges"] = False
    cid, init = running(ocirt, b)
    r = ocirt("exec", "-u", "1000:1000", "--additional-gids", "5", "-e", "FOO=bar",
              "--cwd", "/tmp", "--cap", "CAP_SYS_ADMIN", "--no-new-privs", cid,
              "sh", "-c", "id -u; id -g; id -G; echo $FOO; pwd; "
              "grep -E '^(NoNewPrivs|CapBnd):' /proc/self/status").ok()
    lines = r.stdout.split("\n")
    assert lines[0] == "1000" and lines[1] == "1000"
    assert "5" in lines[2].split()
    assert lines[3] == "bar" and lines[4] == "/tmp"
    assert "NoNewPrivs:\t1" in r.stdout
    bnd = int([l for l in lines if l.startswith("CapBnd")][0].split()[1], 16)
    assert bnd & (1 << 21), "--cap CAP_SYS_ADMIN added to the bounding set"
    r = ocirt("exec", "-u", "0", cid, "id", "-u").ok()
    assert r.stdout.strip() == "0"
    ocirt.delete(cid, "--force").ok()


def test_process_file(ocirt, tmp_path):
    b = ocirt.bundle(SLEEP)
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 555, "hard": 555}]
    cid, init = running(ocirt, b)
    proc = {"terminal": False, "user": {"uid": 1000, "gid": 1000},
            "args": ["sh", "-c", "id -u; echo $A; pwd; ulimit -n; exit 3"],
            "env": ["A=from-file", "PATH=/bin"], "cwd": "/home/user"}
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps(proc))
    r = ocirt("exec", "--process", str(pf), cid)
    assert r.returncode == 3, r
    assert r.stdout.split() == ["1000", "from-file", "/home/user", "555"]
    # capabilities absent from the file: the container's
    pid_file = tmp_path / "p.pid"
    proc["args"] = ["sleep", "600"]
    pf.write_text(json.dumps(proc))
    ocirt("exec", "--process", str(pf), "-d", "--pid-file", str(pid_file), cid).ok()
    pid = int(pid_file.read_text())
    assert proc_status(pid)["CapBnd"] == proc_status(init)["CapBnd"]
    ocirt.delete(cid, "--force").ok()


def test_bad_process_file_names_the_field(ocirt, tmp_path):
    cid, _ = running(ocirt)
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps({"args": ["true"], "cwd": "relative", "user": {"uid": 0,
                                                                           "gid": 0}}))
    assert_error(ocirt("exec", "--process", str(pf), cid), "process.cwd")
    pf.write_text(json.dumps({"args": ["true"], "cwd": "/", "user": {"uid": "x", "gid": 0}}))
    assert_error(ocirt("exec", "--process", str(pf), cid), "process.user.uid")
    pf.write_text("{not json")
    assert_error(ocirt("exec", "--process", str(pf), cid), "--process")
    ocirt.delete(cid, "--force").ok()


def test_detach_and_pid_file(ocirt, tmp_path):
    cid, _ = running(ocirt)
    pid = exec_detached(ocirt, cid, tmp_path, "sleep", "600")
    assert pid_alive(pid)
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read() == b"sleep\x00600\x00"
    r = ocirt("ps", "--format", "json", cid).ok()
    assert pid in json.loads(r.stdout)
    ocirt.delete(cid, "--force").ok()
    wait_for(lambda: not pid_alive(pid), what="exec'd process gone")


def test_missing_program_is_an_error(ocirt):
    cid, _ = running(ocirt)
    assert_error(ocirt("exec", cid, "no-such-program"), "no-such-program")
    assert_error(ocirt("exec", cid), "exec")
    ocirt.delete(cid, "--force").ok()


def test_exec_into_created_container(ocirt):
    b = ocirt.bundle(SLEEP)
    cid = ocirt.new_id()
    ocirt.create(cid, b).ok()
    r = ocirt("exec", cid, "cat", "/proc/1/cmdline").ok()
    assert r.stdout  # init is parked, still ocirt
    assert ocirt.status(cid) == "created"
    ocirt.delete(cid, "--force").ok()


def test_exec_into_stopped_container_is_an_error(ocirt):
    b = ocirt.bundle(["true"])
    cid = ocirt.new_id()
    ocirt.run(cid, b, "-d").ok()
    ocirt.wait_status(cid, "stopped")
    assert_error(ocirt("exec", cid, "true"), "stopped", cid)
    ocirt.delete(cid).ok()


def test_exec_into_missing_container_is_an_error(ocirt):
    assert_error(ocirt("exec", "no-such-id-xyz", "true"), "does not exist")


def test_exec_into_paused_container_is_an_error(ocirt):
    cid, _ = running(ocirt)
    r = ocirt("pause", cid)
    if r.returncode != 0:
        ocirt.delete(cid, "--force").ok()
        pytest.skip(f"pause is not available here: {r.stderr.strip()}")
    assert_error(ocirt("exec", cid, "true"), "paused")
    ocirt("resume", cid).ok()
    ocirt.delete(cid, "--force").ok()


def test_exec_ignore_paused_waits_for_the_resume(ocirt):
    """runc's --ignore-paused: exec into a paused container goes ahead once it is
    resumed (here 1 s later); without the flag it is refused (exit 255)."""
    import threading
    cid, _ = running(ocirt)
    ocirt("pause", cid).ok()
    t = threading.Timer(1.0, lambda: ocirt("resume", cid))
    t.start()
    try:
        r = ocirt("exec", "--ignore-paused", cid, "echo", "ok")
    finally:
        t.join()
    assert r.returncode == 0 and r.stdout == "ok\n", r
    ocirt.delete(cid, "--force").ok()


def test_exec_errors_exit_255(ocirt, tmp_path):
    """runc's exit codes for exec: the process's own status, 255 for exec's errors
    (a missing pid-file dir, a missing program, a missing container)."""
    cid, _ = running(ocirt)
    assert ocirt("exec", cid, "false").returncode == 1
    assert ocirt("exec", cid, "sh", "-c", "exit 42").returncode == 42
    assert_error(ocirt("exec", "--pid-file", "/non-existent/directory", cid, "true"),
                 "--pid-file", "/non-existent")
    assert_error(ocirt("exec", cid, "no-such-binary"), "no-such-binary")
    assert_error(ocirt("exec", "no_such_container", "true"), "does not exist")
    ocirt.delete(cid, "--force").ok()


def test_execve_error_in_runc_words(ocirt):
    """A script whose interpreter is missing: one line, `exec /run.sh: no such file or
    directory` (Go's wording, which runc's suite and users grep for)."""
    b = ocirt.bundle(["sleep", "600"])
    b.config["root"]["readonly"] = False
    with open(os.path.join(b.rootfs, "run.sh"), "w") as f:
        f.write("#!/mmnnttbb foo bar\nsh\n")
    os.chmod(os.path.join(b.rootfs, "run.sh"), 0o755)
    b.write()
    cid = ocirt.new_id()
    ocirt.run(cid, b, "-d").ok()
    assert_error(ocirt("exec", cid, "/run.sh"), "exec /run.sh: no such file or directory")
    ocirt.delete(cid, "--force").ok()


def test_create_pid_file_in_a_missing_dir(ocirt, bundle):
    cid = ocirt.new_id()
    assert_error(ocirt.create(cid, bundle, "--pid-file", "/non-existent/dir/pid"),
                 "--pid-file")
    assert ocirt.state_dirs() == []


def test_preserve_fds(ocirt):
    cid, _ = running(ocirt)
    rfd, wfd = os.pipe()
    try:
        # fd 3 of `ocirt exec` is the pipe's write end (pytest owns our own fd 3)
        p = subprocess.run(ocirt.argv("exec", "--preserve-fds", "1", cid, "sh", "-c",
                                      "echo through-fd3 >&3; ls /proc/self/fd"),
                           preexec_fn=lambda: os.dup2(wfd, 3), pass_fds=(wfd, 3),
                           capture_output=True, env=ocirt.env(), timeout=30)
        assert p.returncode == 0, p
        os.close(wfd)
        wfd = None
        assert os.read(rfd, 100) == b"through-fd3\n"
        assert "3" in p.stdout.decode().split()
        # without --preserve-fds the same fd does not reach the process
        p = subprocess.run(ocirt.argv("exec", cid, "ls", "/proc/self/fd"),
                           preexec_fn=lambda: os.dup2(rfd, 3), pass_fds=(rfd, 3),
                           capture_output=True, env=ocirt.env(), timeout=30)
        assert p.returncode == 0, p
        assert p.stdout.decode().split() == ["0", "1", "2", "3"]  # 3: ls's own dir fd
    finally:
        os.close(rfd)
        if wfd is not None:
            os.close(wfd)
    ocirt.delete(cid, "--force").ok()


def test_user_namespace_container(ocirt, tmp_path):
    b = ocirt.bundle(SLEEP)
    b.linux["namespaces"].append({"type": "user"})
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    # mapped root owns nothing in the rootfs: no mount that needs a new directory
    # there, nor sysfs/mqueue (owned by the host's namespaces)
    b.config["mounts"] = [m for m in b.config["mounts"]
                          if not m["destination"].startswith("/sys")
                          and m["destination"] != "/dev/mqueue"]
    b.write()
    cid = ocirt.new_id()
    r = ocirt.run(cid, b, "-d")
    if r.returncode != 0:
        pytest.fail(f"user namespace container did not start: {r.stderr}")
    init = ocirt.state(cid)["pid"]
    pid = exec_detached(ocirt, cid, tmp_path, "sleep", "600")
    assert ns_inode(pid, "user") == ns_inode(init, "user")
    assert proc_status(pid)["Uid"].split()[0] == "200000"
    r = ocirt("exec", cid, "id", "-u").ok()
    assert r.stdout.strip() == "0"
    ocirt.delete(cid, "--force").ok()


def test_exec_with_lsm_the_host_lacks(ocirt):
    cid, _ = running(ocirt)
    if not os.path.exists("/sys/module/apparmor/parameters/enabled"):
        assert_error(ocirt("exec", "--apparmor", "some-profile", cid, "true"),
                     "process.apparmorProfile", "AppArmor")
    if not os.path.exists("/sys/fs/selinux/enforce"):
        assert_error(ocirt("exec", "--process-label", "system_u:system_r:container_t:s0",
                           cid, "true"), "process.selinuxLabel", "SELinux")
    ocirt.delete(cid, "--force").ok()


def test_signals_are_forwarded(ocirt):
    cid, _ = running(ocirt)
    p = ocirt.spawn("exec", cid, "sh", "-c", "trap 'exit 9' TERM; echo ready; "
                    "while :; do sleep 0.05; done", stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"ready\n"
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 9
    ocirt.delete(cid, "--force").ok()


def test_uses_the_config_as_created(ocirt):
    """runtime.md: updates to config.json after create don't affect the container;
    exec takes the process defaults and seccomp as they were."""
    b = ocirt.bundle(SLEEP)
    b.process["user"] = {"uid": 1000, "gid": 1000}
    cid, _ = running(ocirt, b)
    b.process["user"] = {"uid": 0, "gid": 0}
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_KILL"}
    b.write()
    r = ocirt("exec", cid, "id", "-u").ok()
    assert r.stdout.strip() == "1000"
    ocirt.delete(cid, "--force").ok()


class _PidfdReceiver:
    """A --pidfd-socket consumer: accepts one connection and keeps the pidfd sent."""

    def __init__(self, path):
        import socket
        import threading
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.srv.settimeout(20)
        self.got = []
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        import socket
        try:
            conn, _ = self.srv.accept()
        except OSError:  # closed (its fd may be reused) or timed out: pidfd() says so
            return
        with conn:
            msg, fds, _f, _a = socket.recv_fds(conn, 64, 4)
            self.got.append((msg, fds))

    def pidfd(self):
        self.t.join(20)
        self.srv.close()
        (name, fds), = self.got
        return name.decode(), fds[0]


def test_pidfd_socket_for_create_and_exec(ocirt, bundle, tmp_path):
    """--pidfd-socket: a pidfd of init (create) and of the exec'd process (exec -d)
    arrives over the socket, named as runc names them; signalling it kills that one."""
    import signal
    bundle.args("sleep", "600").write()
    rc = _PidfdReceiver(str(tmp_path / "c.sock"))
    cid = ocirt.new_id()
    ocirt.create(cid, bundle, "--pidfd-socket", str(tmp_path / "c.sock")).ok()
    name, fd = rc.pidfd()
    assert name == "standard"
    init = ocirt.state(cid)["pid"]
    ocirt.start(cid).ok()
    re_ = _PidfdReceiver(str(tmp_path / "e.sock"))
    ocirt("exec", "-d", "--pid-file", str(tmp_path / "p"), "--pidfd-socket",
          str(tmp_path / "e.sock"), cid, "sleep", "600").ok()
    ename, efd = re_.pidfd()
    assert ename == "setns"
    epid = int((tmp_path / "p").read_text())
    signal.pidfd_send_signal(efd, signal.SIGKILL)
    os.close(efd)
    wait_for(lambda: not pid_alive(epid), what="the exec'd process to die")
    assert pid_alive(init)
    signal.pidfd_send_signal(fd, signal.SIGKILL)
    os.close(fd)
    ocirt.wait_status(cid, "stopped")
    ocirt.delete(cid).ok()
    assert_error(ocirt.create(ocirt.new_id(), bundle, "--pidfd-socket",
                              str(tmp_path / "none.sock")), "--pidfd-socket")
    assert ocirt.state_dirs() == []
