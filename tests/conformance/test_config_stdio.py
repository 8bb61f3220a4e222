"""What engines rely on around create: the container process inherits create's
stdin/stdout/stderr (terminal false), --preserve-fds passes extra fds and no
other host fd, --pid-file holds the state's pid."""
import os
import subprocess

from helpers import pid_alive

SLEEP = ["sleep", "600"]


def _read_all(fd):
    chunks = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def test_stdio_passthrough_create_start(ocirt, bundle):
    """Pipes given to create reach the container process after start."""
    bundle.sh("read line; echo \"out:$line\"; echo \"err:$line\" >&2").write()
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    cid = ocirt.new_id()
    try:
        ocirt.create(cid, bundle, stdin=in_r, stdout=out_w, stderr=err_w).ok()
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        in_r = out_w = err_w = None
        assert ocirt.status(cid) == "created"
        ocirt.start(cid).ok()
        os.write(in_w, b"hello\n")
        os.close(in_w)
        in_w = None
        assert _read_all(out_r) == b"out:hello\n"
        assert _read_all(err_r) == b"err:hello\n"
        ocirt.wait_status(cid, "stopped")
        ocirt.delete(cid).ok()
    finally:
        for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
            if fd is not None:
                os.close(fd)


def test_stdio_passthrough_run(ocirt, bundle):
    bundle.sh("cat; echo done >&2").write()
    p = ocirt.spawn("run", "--bundle", bundle.path, ocirt.new_id(), stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(b"line1\nline2\n", timeout=30)
    assert p.returncode == 0, err
    assert out == b"line1\nline2\n"
    assert err == b"done\n"


def test_stdout_eof_when_container_exits(ocirt, bundle):
    """Nothing but the container holds the stdout pipe once create returns."""
    bundle.sh("echo bye").write()
    r, w = os.pipe()
    cid = ocirt.new_id()
    try:
        ocirt.create(cid, bundle, stdout=w).ok()
        os.close(w)
        w = None
        ocirt.start(cid).ok()
        assert _read_all(r) == b"bye\n"  # EOF: no leftover process kept the pipe
        ocirt.wait_status(cid, "stopped")
        ocirt.delete(cid).ok()
    finally:
        os.close(r)
        if w is not None:
            os.close(w)


def test_preserve_fds(ocirt, bundle):
    """--preserve-fds N: fds 3..3+N-1 of create reach the container process."""
    bundle.sh("echo to-three >&3; echo to-four >&4; ls /proc/self/fd | sort -n | tr '\\n' ' '"
              ).write()
    r3, w3 = os.pipe()
    r4, w4 = os.pipe()
    extra_r, extra_w = os.pipe()
    cid = ocirt.new_id()
    # the child gets w3 as fd 3, w4 as fd 4 and one more fd (5) that is not preserved
    wrapper = ("import os,sys; os.dup2(int(sys.argv[1]),3); os.dup2(int(sys.argv[2]),4); "
               "os.dup2(int(sys.argv[3]),5); os.execv(sys.argv[4], sys.argv[4:])")
    import sys
    argv = [sys.executable, "-c", wrapper, str(w3), str(w4), str(extra_w)] + ocirt.argv(
        "run", "--preserve-fds", "2", "--bundle", bundle.path, cid)
    try:
        p = subprocess.run(argv, pass_fds=(w3, w4, extra_w), capture_output=True,
                           env=ocirt.env(), timeout=30)
        for fd in (w3, w4, extra_w):
            os.close(fd)
        assert p.returncode == 0, p.stderr
        assert _read_all(r3) == b"to-three\n"
        assert _read_all(r4) == b"to-four\n"
        # fds the container sees: stdio, the two preserved, and ls's own directory fd
        fds = p.stdout.decode().split()
        assert fds[:5] == ["0", "1", "2", "3", "4"]
        assert len(fds) == 6, f"fds in the container: {fds}"
        assert _read_all(extra_r) == b"", "fd 5 was not preserved but reached the container"
    finally:
        for fd in (r3, r4, extra_r):
            os.close(fd)


def test_no_host_fd_reaches_container(ocirt, bundle):
    """Without --preserve-fds only stdio is left (fds the caller leaked included)."""
    bundle.sh("ls /proc/self/fd").write()
    r, w = os.pipe()
    try:
        res = ocirt.run(ocirt.new_id(), bundle, pass_fds=(w,))
    finally:
        os.close(w)
        os.close(r)
    fds = sorted(int(x) for x in res.ok().stdout.split())
    assert fds == [0, 1, 2, 3], res.stdout  # 3 is ls's own /proc/self/fd


def test_pid_file_create(ocirt, bundle, tmp_path):
    bundle.args(*SLEEP).write()
    cid = ocirt.new_id()
    pf = tmp_path / "init.pid"
    ocirt.create(cid, bundle, "--pid-file", str(pf)).ok()
    st = ocirt.state(cid)
    assert pf.read_text().strip() == str(st["pid"])
    assert pid_alive(st["pid"])
    ocirt.delete(cid, "--force").ok()


def test_pid_file_relative_to_cwd(ocirt, bundle, tmp_path):
    bundle.args(*SLEEP).write()
    cid = ocirt.new_id()
    ocirt.create(cid, bundle, "--pid-file", "rel.pid", cwd=str(tmp_path)).ok()
    assert (tmp_path / "rel.pid").read_text().strip() == str(ocirt.state(cid)["pid"])
    ocirt.delete(cid, "--force").ok()


def test_pid_file_run_detach(ocirt, bundle, tmp_path):
    bundle.args(*SLEEP).write()
    cid = ocirt.new_id()
    pf = tmp_path / "run.pid"
    ocirt.run(cid, bundle, "--detach", "--pid-file", str(pf)).ok()
    assert pf.read_text().strip() == str(ocirt.state(cid)["pid"])
    ocirt.delete(cid, "--force").ok()
