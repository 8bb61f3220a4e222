"""One timed command: posix_spawn + wait4, output captured in memfds.

Used in the harness for ocirt and runc, and inside nsrunner.py (crun's private
mount namespace), so every runtime is timed by the same code: the clock starts
just before posix_spawn and stops when wait4 returns.
"""
import os
import select
import time

_NULL_R = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
_NULL_W = os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)


def _drain(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            break
        chunks.append(b)
    os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


def timed(argv, capture=True, env=None, timeout=120.0):
    """Run argv (argv[0] an absolute path) to completion.

    Returns {"ns": wall time, "rc": exit code (-N for signal N), "maxrss_kb":
    ru_maxrss of the child and the children it reaped (inflated by the harness's
    own RSS: see Runtime.call_maxrss), "cpu_ns": user+sys CPU time of the child and
    the children it reaped ("user_ns", "sys_ns": the two apart), "out": stdout if
    captured, "err": stderr}.
    """
    out_fd = os.memfd_create("bench-out", os.MFD_CLOEXEC) if capture else None
    err_fd = os.memfd_create("bench-err", os.MFD_CLOEXEC)
    actions = [(os.POSIX_SPAWN_DUP2, _NULL_R, 0),
               (os.POSIX_SPAWN_DUP2, out_fd if capture else _NULL_W, 1),
               (os.POSIX_SPAWN_DUP2, err_fd, 2)]
    t0 = time.perf_counter_ns()
    try:
        pid = os.posix_spawn(argv[0], argv, os.environ if env is None else env,
                             file_actions=actions)
    except OSError as e:
        if out_fd is not None:
            os.close(out_fd)
        os.close(err_fd)
        return {"ns": 0, "rc": 127, "maxrss_kb": 0, "cpu_ns": 0, "out": "",
                "err": f"{argv[0]}: {e}"}
    timed_out = False
    if timeout:
        pfd = os.pidfd_open(pid)
        try:
            if not select.select([pfd], [], [], timeout)[0]:
                timed_out = True          # a hung command must not hang the bench
                os.kill(pid, 9)
        finally:
            os.close(pfd)
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    if timed_out:
        err = _drain(err_fd)
        if out_fd is not None:
            os.close(out_fd)
        return {"ns": t1 - t0, "rc": -9, "maxrss_kb": 0, "cpu_ns": 0, "out": "",
                "err": err + f"\n{os.path.basename(argv[0])} {' '.join(argv[1:4])}...: "
                             f"killed after {timeout:.0f} s (hung)"}
    return {"ns": t1 - t0, "rc": os.waitstatus_to_exitcode(status), "maxrss_kb": ru.ru_maxrss,
            "cpu_ns": int((ru.ru_utime + ru.ru_stime) * 1e9),
            "user_ns": int(ru.ru_utime * 1e9), "sys_ns": int(ru.ru_stime * 1e9),
            "out": _drain(out_fd) if capture else "", "err": _drain(err_fd)}
