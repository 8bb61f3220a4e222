"""Docker drives ocirt: dockerd -> containerd -> containerd-shim-runc-v2 -> ocirt.

The daemon is this session's own (conftest.dockerd); ocirt is registered with
`ocirt install` as runtime "ocirt" and as the default runtime. Each test runs the
Debian docker client against it and checks, through the container, that what the
user asked for happened.
"""
import json
import os
import re
import time

import pytest

import harness as h

IMAGE = "ocirt-busybox"
RT = ["--runtime=ocirt", "--network=none"]


def cg_file(dockerd, ctrl, cid, name):
    """A file of the container's cgroup in the `ctrl` v1 hierarchy (or v2 tree)."""
    for base in (f"/sys/fs/cgroup/{ctrl}", "/sys/fs/cgroup"):
        p = f"{base}{dockerd.cgroup_parent}/{cid}/{name}"
        if os.path.exists(p):
            with open(p) as f:
                return f.read().strip()
    raise AssertionError(f"no cgroup file {name} for {cid[:12]} under {dockerd.cgroup_parent}")


def inspect(dockerd, cid, fmt):
    return dockerd.docker("inspect", "-f", fmt, cid).stdout.strip()


@pytest.fixture
def docker(dockerd):
    """The dockerd, and `run(...)`: docker run --rm --runtime=ocirt --network=none ...
    Containers the test started (`detach(...)`) are removed afterwards."""
    started = []

    class D:
        d = dockerd

        @staticmethod
        def run(*args, check=False, input=None, timeout=60):
            return dockerd.docker("run", "--rm", *RT, *args, check=check, input=input,
                                  timeout=timeout)

        @staticmethod
        def detach(*args):
            r = dockerd.docker("run", "-d", *RT, *args)
            cid = r.stdout.strip().splitlines()[-1]
            started.append(cid)
            return cid

        @staticmethod
        def docker(*args, **kw):
            return dockerd.docker(*args, **kw)

    yield D
    if started:
        dockerd.docker("rm", "-f", *started, check=False, timeout=60)


def wait_until(pred, timeout=30, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# ---------------------------------------------------------------- run

def test_run_foreground_output_and_exit_codes(docker):
    r = docker.run(IMAGE, "echo", "hello from ocirt")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from ocirt\n"
    r = docker.run(IMAGE, "sh", "-c", "echo to-err >&2; exit 7")
    assert r.returncode == 7
    assert r.stderr.strip() == "to-err"


def test_default_runtime_is_ocirt(docker, is_ocirt):
    """`ocirt install --default` made ocirt dockerd's default runtime."""
    info = docker.docker("info", "--format", "{{json .Runtimes}} {{.DefaultRuntime}}").stdout
    assert '"ocirt"' in info and info.strip().endswith(" ocirt"), info
    r = docker.docker("run", "-d", "--network=none", IMAGE, "sleep", "100")
    cid = r.stdout.strip()
    try:
        assert inspect(docker.d, cid, "{{.HostConfig.Runtime}}") == "ocirt"
        # The runtime's own state for the container: written by ocirt's create.
        root = os.path.join(docker.d.exec_root, "runtime-runc", docker.d.ns, cid)
        with open(os.path.join(root, "state.json")) as f:
            st = json.load(f)
        if is_ocirt:
            assert st["id"] == cid and st["pid"] == int(inspect(docker.d, cid, "{{.State.Pid}}"))
    finally:
        docker.docker("rm", "-f", cid)


def test_run_detached_logs_and_wait(docker):
    cid = docker.detach(IMAGE, "sh", "-c", "echo started; sleep 0.5; exit 3")
    assert docker.docker("wait", cid, timeout=30).stdout.strip() == "3"
    assert docker.docker("logs", cid).stdout == "started\n"
    assert inspect(docker.d, cid, "{{.State.ExitCode}}") == "3"


def test_tty_through_console_socket(docker):
    r = docker.run("-t", IMAGE, "sh", "-c", "tty; stty size; echo $TERM")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.replace("\r", "").split("\n")
    assert re.fullmatch(r"/dev/pts/\d+", lines[0]), r.stdout
    assert lines[2] == "xterm"


def test_interactive_tty(docker):
    """docker run -it from a terminal: keystrokes in, output and exit code back."""
    rc, out = h.run_in_pty([h.DOCKER, "run", "--rm", "-it", *RT, IMAGE, "sh", "-c",
                            "read x; echo got:$x; exit 3"], send=b"hello\r",
                           env=docker.d.env)
    assert "got:hello" in out, out
    assert rc == 3, out


def test_interactive_piped_stdin(docker):
    r = docker.run("-i", IMAGE, "sh", "-c", "wc -l; read x || echo eof", input="a\nb\nc\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3", "eof"]


def test_user_env_workdir(docker):
    r = docker.run("--user", "1000:1000", "-e", "FOO=bar baz", "-w", "/tmp", IMAGE,
                   "sh", "-c", 'id -u; id -g; echo "$FOO"; pwd; echo $HOME')
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:5] == ["1000", "1000", "bar baz", "/tmp", "/home/user"]
    r = docker.run("--user", "nobody", IMAGE, "id", "-u")
    assert r.stdout.strip() == "65534", r.stderr


def test_read_only_rootfs_and_tmpfs(docker):
    r = docker.run("--read-only", "--tmpfs", "/scratch:size=1m", IMAGE, "sh", "-c",
                   "touch /x 2>&1; touch /scratch/y && echo wrote; grep ' /scratch ' /proc/mounts")
    assert r.returncode == 0, r.stderr
    assert "Read-only file system" in r.stdout
    assert "wrote" in r.stdout
    assert re.search(r"^tmpfs /scratch tmpfs \S*size=1024k", r.stdout, re.M), r.stdout


def test_bind_mounts(docker, session_dir):
    src = os.path.join(session_dir, "vol")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "in"), "w") as f:
        f.write("from the host\n")
    r = docker.run("-v", f"{src}:/v", "-v", f"{src}:/ro:ro", IMAGE, "sh", "-c",
                   "cat /v/in; echo from-container > /v/out; touch /ro/z 2>&1; true")
    assert r.returncode == 0, r.stderr
    assert "from the host" in r.stdout and "Read-only file system" in r.stdout
    with open(os.path.join(src, "out")) as f:
        assert f.read() == "from-container\n"


def _caps(text):
    return {k: int(v, 16) for k, v in re.findall(r"^(Cap\w+):\s+([0-9a-f]+)$", text, re.M)}


def test_cap_drop_and_add(docker):
    r = docker.run("--cap-drop", "ALL", IMAGE, "grep", "^Cap", "/proc/self/status")
    caps = _caps(r.stdout)
    assert caps and all(v == 0 for v in caps.values()), r.stdout + r.stderr
    r = docker.run("--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "--cap-add", "CHOWN",
                   IMAGE, "grep", "^Cap", "/proc/self/status")
    caps = _caps(r.stdout)
    want = (1 << 12) | (1 << 0)  # CAP_NET_ADMIN, CAP_CHOWN
    assert caps["CapEff"] == want and caps["CapBnd"] == want, r.stdout + r.stderr
    # Docker's default set has CAP_CHOWN and not CAP_SYS_ADMIN.
    r = docker.run("--cap-drop", "CHOWN", IMAGE, "grep", "^CapEff", "/proc/self/status")
    eff = _caps(r.stdout)["CapEff"]
    assert not eff & 1 and not eff & (1 << 21) and eff & (1 << 6), r.stdout  # SETGID kept


def test_no_new_privileges(docker):
    r = docker.run("--security-opt", "no-new-privileges", IMAGE, "grep", "NoNewPrivs",
                   "/proc/self/status")
    assert r.stdout.split() == ["NoNewPrivs:", "1"], r.stdout + r.stderr
    r = docker.run(IMAGE, "grep", "NoNewPrivs", "/proc/self/status")
    assert r.stdout.split() == ["NoNewPrivs:", "0"], r.stdout + r.stderr


def test_default_seccomp_profile(docker):
    """Docker's default profile is loaded: mode 2, and a call it refuses without
    CAP_SYS_ADMIN (unshare(CLONE_NEWUSER), which root may otherwise make with no
    capability at all) fails with EPERM; unconfined, the same call works."""
    r = docker.run(IMAGE, "sh", "-c", "grep ^Seccomp: /proc/self/status; unshare -U true")
    assert r.stdout.split()[:2] == ["Seccomp:", "2"], r.stdout + r.stderr
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, r.stderr
    r = docker.run("--security-opt", "seccomp=unconfined", IMAGE, "sh", "-c",
                   "grep ^Seccomp: /proc/self/status; unshare -U true && echo unshared")
    assert r.stdout.split() == ["Seccomp:", "0", "unshared"], r.stdout + r.stderr


def test_seccomp_profile_file(docker, session_dir):
    prof = os.path.join(session_dir, "no-mkdir.json")
    with open(prof, "w") as f:
        json.dump({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}, f)
    r = docker.run("--security-opt", f"seccomp={prof}", IMAGE, "sh", "-c",
                   "mkdir /tmp/d 2>&1; touch /tmp/f && echo touched")
    assert "Permission denied" in r.stdout and "touched" in r.stdout, r.stdout + r.stderr


# ---------------------------------------------------------------- resources

def test_memory_limit_oom_killed(docker):
    # The memory hog starts on SIGUSR1, once the limit has been read from the cgroup.
    cid = docker.detach("--memory", "16m", "--memory-swap", "16m", IMAGE, "sh", "-c",
                        "trap 'exec tail /dev/zero' USR1; while :; do sleep 0.1; done")
    assert cg_file(docker.d, "memory", cid, "memory.limit_in_bytes") == str(16 << 20)
    h.wait_signal_disposition(int(inspect(docker.d, cid, "{{.State.Pid}}")), 10)
    docker.docker("kill", "-s", "USR1", cid)
    assert docker.docker("wait", cid, timeout=60).stdout.strip() == "137"
    assert inspect(docker.d, cid, "{{.State.OOMKilled}}") == "true"


def test_pids_limit(docker):
    r = docker.run("--pids-limit", "5", IMAGE, "sh", "-c",
                   "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo done")
    assert "can't fork" in r.stderr or "Resource temporarily unavailable" in r.stderr, \
        r.stdout + r.stderr
    cid = docker.detach("--pids-limit", "5", IMAGE, "sleep", "100")
    assert cg_file(docker.d, "pids", cid, "pids.max") == "5"


def test_cpus(docker):
    cid = docker.detach("--cpus", "0.5", IMAGE, "sleep", "100")
    quota = cg_file(docker.d, "cpu", cid, "cpu.cfs_quota_us")
    period = cg_file(docker.d, "cpu", cid, "cpu.cfs_period_us")
    assert (int(quota), int(period)) == (50000, 100000)


def test_update(docker):
    cid = docker.detach("--memory", "64m", IMAGE, "sleep", "100")
    docker.docker("update", "--memory", "48m", "--memory-swap", "96m", "--pids-limit", "7",
                  "--cpus", "0.25", cid)
    assert cg_file(docker.d, "memory", cid, "memory.limit_in_bytes") == str(48 << 20)
    assert cg_file(docker.d, "pids", cid, "pids.max") == "7"
    assert cg_file(docker.d, "cpu", cid, "cpu.cfs_quota_us") == "25000"
    assert inspect(docker.d, cid, "{{.HostConfig.Memory}}") == str(48 << 20)


def test_update_memory_only(docker):
    """docker update of the memory alone: Docker sends 0 for every CPU and blkio field
    it does not set; 0 means unset there (it failed as cpu.quota 0 out of range)."""
    cid = docker.detach(IMAGE, "sleep", "100")
    docker.docker("update", "--memory", "64m", "--memory-swap", "64m", cid)
    assert cg_file(docker.d, "memory", cid, "memory.limit_in_bytes") == str(64 << 20)
    assert cg_file(docker.d, "cpu", cid, "cpu.cfs_quota_us") == "-1"


def test_stats_no_stream(docker):
    cid = docker.detach("--memory", "64m", IMAGE, "sh", "-c", "sleep 100 & sleep 101 & wait")
    wait_until(lambda: inspect(docker.d, cid, "{{.State.Running}}") == "true")
    out = docker.docker("stats", "--no-stream", "--format",
                        "{{.Container}} {{.MemUsage}} {{.PIDs}}", cid).stdout.split()
    assert out[0] == cid
    assert out[1] != "0B" and out[3] == "64MiB", out
    assert int(out[4]) == 3, out


# ---------------------------------------------------------------- exec, top, pause

def test_exec(docker):
    cid = docker.detach(IMAGE, "sleep", "100")
    r = docker.docker("exec", cid, "echo", "exec-ok")
    assert r.stdout == "exec-ok\n"
    r = docker.docker("exec", cid, "sh", "-c", "exit 5", check=False)
    assert r.returncode == 5
    r = docker.docker("exec", "-u", "1000", "-w", "/tmp", "-e", "X=y", cid, "sh", "-c",
                      "id -u; pwd; echo $X")
    assert r.stdout.split() == ["1000", "/tmp", "y"]
    r = docker.docker("exec", "-i", cid, "cat", input="piped\n")
    assert r.stdout == "piped\n"
    # The exec'd process shares the container's pid namespace: it sees init as pid 1.
    r = docker.docker("exec", cid, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
    assert r.stdout.strip() == "sleep 100"


def test_exec_tty(docker):
    cid = docker.detach(IMAGE, "sleep", "100")
    r = docker.docker("exec", "-t", cid, "tty")
    assert re.fullmatch(r"/dev/pts/\d+", r.stdout.strip()), r.stdout
    rc, out = h.run_in_pty([h.DOCKER, "exec", "-it", cid, "sh", "-c",
                            "read x; echo got:$x; exit 4"], send=b"typed\r", env=docker.d.env)
    assert "got:typed" in out and rc == 4, out


def test_top(docker):
    cid = docker.detach(IMAGE, "sh", "-c", "sleep 101 & sleep 102")
    wait_until(lambda: "sleep 102" in docker.docker("top", cid).stdout, what="docker top")
    out = docker.docker("top", cid).stdout
    assert "sleep 101" in out and "sleep 102" in out, out
    out = docker.docker("top", cid, "-o", "pid,comm").stdout
    assert out.split()[:2] == ["PID", "COMMAND"] and out.count("sleep") == 2, out


def test_pause_unpause(docker):
    cid = docker.detach(IMAGE, "sleep", "100")
    docker.docker("pause", cid)
    assert inspect(docker.d, cid, "{{.State.Status}} {{.State.Paused}}") == "paused true"
    assert cg_file(docker.d, "freezer", cid, "freezer.state") == "FROZEN"
    docker.docker("unpause", cid)
    assert inspect(docker.d, cid, "{{.State.Status}}") == "running"
    assert cg_file(docker.d, "freezer", cid, "freezer.state") == "THAWED"
    assert docker.docker("exec", cid, "echo", "alive").stdout == "alive\n"


# ---------------------------------------------------------------- signals and lifecycle

def test_stop_sigterm(docker):
    cid = docker.detach(IMAGE, "sh", "-c",
                        "trap 'echo got-term; exit 3' TERM; echo up; while :; do sleep 0.1; done")
    wait_until(lambda: "up" in docker.docker("logs", cid).stdout, what="the trap")
    docker.docker("stop", "-t", "60", cid, timeout=90)
    # exit 3 is the trap's: SIGTERM reached it (SIGKILL, after 60s, would give 137)
    assert inspect(docker.d, cid, "{{.State.ExitCode}}") == "3"
    assert "got-term" in docker.docker("logs", cid).stdout


def test_stop_sigkill_after_timeout(docker):
    cid = docker.detach(IMAGE, "sh", "-c", "trap '' TERM; echo up; while :; do sleep 0.1; done")
    wait_until(lambda: "up" in docker.docker("logs", cid).stdout, what="the trap")
    t = time.monotonic()
    docker.docker("stop", "-t", "2", cid)
    took = time.monotonic() - t
    assert 2 <= took < 30, took
    assert inspect(docker.d, cid, "{{.State.ExitCode}}") == "137"


def test_kill_signal(docker):
    cid = docker.detach(IMAGE, "sh", "-c",
                        "trap 'echo got-usr1; exit 4' USR1; echo up; while :; do sleep 0.1; done")
    wait_until(lambda: "up" in docker.docker("logs", cid).stdout, what="the trap")
    docker.docker("kill", "-s", "USR1", cid)
    assert docker.docker("wait", cid, timeout=30).stdout.strip() == "4"
    assert "got-usr1" in docker.docker("logs", cid).stdout
    cid = docker.detach(IMAGE, "sleep", "100")
    docker.docker("kill", cid)
    assert docker.docker("wait", cid, timeout=30).stdout.strip() == "137"


def test_restart(docker):
    cid = docker.detach(IMAGE, "sh", "-c", "echo start; exec sleep 100")
    wait_until(lambda: "start" in docker.docker("logs", cid).stdout, what="the first start")
    pid1 = inspect(docker.d, cid, "{{.State.Pid}}")
    docker.docker("restart", "-t", "1", cid)
    assert inspect(docker.d, cid, "{{.State.Running}}") == "true"
    assert inspect(docker.d, cid, "{{.State.Pid}}") != pid1
    assert not os.path.exists(f"/proc/{pid1}")
    wait_until(lambda: docker.docker("logs", cid).stdout == "start\nstart\n", what="2nd start")


def test_rm_force(docker):
    cid = docker.detach(IMAGE, "sleep", "100")
    pid = int(inspect(docker.d, cid, "{{.State.Pid}}"))
    docker.docker("rm", "-f", cid)
    assert cid not in docker.docker("ps", "-aq", "--no-trunc").stdout
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), what="the process to go")
    assert not os.path.exists(os.path.join(docker.d.exec_root, "runtime-runc", docker.d.ns, cid))


def _runtime_error_line(r):
    """The one line of the client's stderr that carries the runtime's error (the docker
    client may add its own line, e.g. "error waiting for container: context canceled")."""
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "OCI runtime" in ln]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_error_reaches_the_user_as_one_line(docker, is_ocirt):
    line = _runtime_error_line(docker.run(IMAGE, "/no/such/command"))
    assert "OCI runtime create failed" in line and "/no/such/command" in line, line
    if is_ocirt:
        line = _runtime_error_line(docker.run("--sysctl", "net.ipv4.ocirt_no_such_knob=1",
                                              IMAGE, "true"))
        assert "linux.sysctl" in line and "ocirt_no_such_knob" in line, line


def test_live_restore(docker):
    """With live-restore, the container keeps running while dockerd is down, and the
    new dockerd picks it up: exec and stop work on it."""
    cid = docker.detach(IMAGE, "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")
    pid = int(inspect(docker.d, cid, "{{.State.Pid}}"))
    h.wait_signal_disposition(pid, 15)
    docker.d.stop()
    time.sleep(0.5)
    assert os.path.exists(f"/proc/{pid}"), "the container died with dockerd"
    docker.d.start()
    assert inspect(docker.d, cid, "{{.State.Running}} {{.State.Pid}}") == f"true {pid}"
    assert docker.docker("exec", cid, "echo", "still-here").stdout == "still-here\n"
    docker.docker("stop", "-t", "5", cid)
    assert inspect(docker.d, cid, "{{.State.ExitCode}}") == "0"
