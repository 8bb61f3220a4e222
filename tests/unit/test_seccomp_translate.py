"""ocirt.seccomp: linux.seccomp -> BPF. Translation rules, errors naming the field,
and (in a forked child, with no_new_privs so no privilege is needed) the kernel
enforcing what was built."""
import errno
import json
import os

import pytest

from ocirt import seccomp, syscalls as sc
from ocirt.errors import ConfigError

HERE = os.path.dirname(os.path.abspath(__file__))
DOCKER = os.path.join(os.path.dirname(HERE), "conformance", "data",
                      "docker-default-seccomp.json")


def spec(*rules, default="SCMP_ACT_ALLOW", **extra):
    s = {"defaultAction": default, "syscalls": list(rules)}
    s.update(extra)
    return s


def rule(names, action="SCMP_ACT_ERRNO", **extra):
    r = {"names": list(names), "action": action}
    r.update(extra)
    return r


def in_child(filt, fn):
    """Load `filt` in a forked child (after no_new_privs) and run fn(); returns
    the child's exit status (fn's return value, or 128+signal)."""
    from ocirt import syscalls as sc
    pid = os.fork()
    if pid == 0:
        code = 100
        try:
            sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
            filt.load()
            code = fn()
        except BaseException:  # noqa: BLE001
            code = 101
        os._exit(code)
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st) if os.WIFEXITED(st) else 128 + os.WTERMSIG(st)


def mkdir_errno(path):
    def fn():
        try:
            os.mkdir(path)
            os.rmdir(path)
            return 0
        except OSError as e:
            return e.errno
    return fn


def test_program_is_bpf(tmp_path):
    f = seccomp.build_filter(spec(rule(["mkdir"]), flags=[]))
    assert f.prog and len(f.prog) % 8 == 0
    assert f.flags == 0 and not f.notify


def test_errno_ret_enforced(tmp_path):
    f = seccomp.build_filter(spec(rule(["mkdir", "mkdirat"], errnoRet=errno.EROFS)))
    assert in_child(f, mkdir_errno(str(tmp_path / "d"))) == errno.EROFS
    assert in_child(seccomp.build_filter(spec(rule(["getpid"]))),
                    mkdir_errno(str(tmp_path / "d"))) == 0


def test_default_errno_ret_enforced(tmp_path):
    with open(DOCKER) as fh:
        prof = json.load(fh)
    prof["defaultErrnoRet"] = errno.ENOTSUP
    f = seccomp.build_filter(prof)

    def fn():
        try:
            os.unshare(0x10000000) if hasattr(os, "unshare") else _raw_unshare()
        except OSError as e:
            return e.errno
        return 0
    assert in_child(f, fn) == errno.ENOTSUP


def _raw_unshare():
    from ocirt import syscalls as sc
    sc.unshare(0x10000000)


def test_kill_process(tmp_path):
    f = seccomp.build_filter(spec(rule(["mkdir", "mkdirat"], "SCMP_ACT_KILL_PROCESS")))
    assert in_child(f, mkdir_errno(str(tmp_path / "d"))) == 128 + 31


def test_args_masked_eq(tmp_path):
    # mkdir(path, mode): refused when mode & 0o7 == 0o5
    f = seccomp.build_filter(spec(rule(["mkdir"], args=[
        {"index": 1, "value": 0o7, "valueTwo": 0o5, "op": "SCMP_CMP_MASKED_EQ"}])))

    def fn():
        out = 0
        for i, mode in enumerate((0o755, 0o750)):
            p = str(tmp_path / f"d{i}")
            try:
                os.mkdir(p, mode)
                os.rmdir(p)
            except OSError:
                out |= 1 << i
        return out
    assert in_child(f, fn) == 1  # only 0o755 refused


def test_rule_equal_to_default_is_skipped():
    f = seccomp.build_filter(spec(rule(["mkdir"], "SCMP_ACT_ALLOW")))
    assert f.prog


def test_notify_flags():
    f = seccomp.build_filter(spec(rule(["mkdir"], "SCMP_ACT_NOTIFY"), listenerPath="/x",
                                  flags=["SECCOMP_FILTER_FLAG_TSYNC",
                                         "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]))
    assert f.notify and f.listener_path == "/x"
    # TSYNC is ignored (init is single-threaded when it loads the filter, as in runc)
    assert f.flags == seccomp.FLAG_NEW_LISTENER | 32
    g = seccomp.build_filter(spec(rule(["mkdir"]),
                                  flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]))
    assert g.flags == 0  # meaningless without a listener


def test_no_flags_field_means_spec_allow_where_the_kernel_has_it():
    """runc's default: a config without `flags` gets SPEC_ALLOW; an empty list none."""
    f = seccomp.build_filter({k: v for k, v in spec(rule(["mkdir"])).items() if k != "flags"})
    try:
        sc.seccomp(seccomp.SECCOMP_SET_MODE_FILTER, 4, None)
    except OSError as e:
        has = e.errno == 14
    assert f.flags == (4 if has else 0)
    assert seccomp.build_filter(dict(spec(rule(["mkdir"])), flags=[])).flags == 0


def test_unknown_syscall_is_a_warning(tmp_path):
    from ocirt.log import LOG
    LOG.path, LOG.fmt = str(tmp_path / "log"), "json"
    try:
        seccomp.build_filter(spec(rule(["mkdir", "definitely_not_a_syscall"])))
    finally:
        LOG.path = None
    line = json.loads((tmp_path / "log").read_text().splitlines()[0])
    assert line["level"] == "warning"
    assert "linux.seccomp.syscalls[0].names[1]" in line["msg"]


def test_docker_profile_builds():
    with open(DOCKER) as fh:
        f = seccomp.build_filter(json.load(fh))
    assert 0 < len(f.prog) // 8 <= 4096


@pytest.mark.parametrize("s,field", [
    ({"syscalls": []}, "linux.seccomp.defaultAction"),
    (spec(default="SCMP_ACT_NOTIFY", listenerPath="/x"), "linux.seccomp.defaultAction"),
    (spec(rule(["x"], "SCMP_ACT_ALLOW", errnoRet=1)), "linux.seccomp.syscalls[0].errnoRet"),
    (spec(rule(["x"], errnoRet=5000)), "linux.seccomp.syscalls[0].errnoRet"),
    (spec(rule(["x"], errnoRet=-1)), "linux.seccomp.syscalls[0].errnoRet"),
    (spec(rule(["x"], "SCMP_ACT_NOTIFY")), "linux.seccomp.listenerPath"),
    (spec(rule(["x"], "SCMP_ACT_NOTIFY"), listenerPath="rel"), "linux.seccomp.listenerPath"),
    (spec(rule(["sendmsg"], "SCMP_ACT_NOTIFY"), listenerPath="/x"),
     "linux.seccomp.syscalls[0].names[0]"),
    (spec(rule([])), "linux.seccomp.syscalls[0].names"),
    (spec(rule([""])), "linux.seccomp.syscalls[0].names[0]"),
    (spec(rule(["x"], "NOPE")), "linux.seccomp.syscalls[0].action"),
    (spec(rule(["x"], args=[{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}])),
     "linux.seccomp.syscalls[0].args[0].index"),
    (spec(rule(["x"], args=[{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}])),
     "linux.seccomp.syscalls[0].args[0].value"),
    (spec(rule(["x"], args=[{"index": 0, "value": 2**64, "op": "SCMP_CMP_EQ"}])),
     "linux.seccomp.syscalls[0].args[0].value"),
    (spec(rule(["x"], args=[{"index": 0, "value": 1, "op": "SCMP_CMP_EQ",
                             "valueTwo": "a"}])), "linux.seccomp.syscalls[0].args[0].valueTwo"),
    (spec(rule(["x"], args=[{"value": 1, "op": "SCMP_CMP_EQ"}])),
     "linux.seccomp.syscalls[0].args[0].index"),
    (spec(rule(["x"], args=[{"index": 0, "value": 1, "op": 4}])),
     "linux.seccomp.syscalls[0].args[0].op"),
    (spec(architectures=["SCMP_ARCH_NOPE"]), "linux.seccomp.architectures[0]"),
    (spec(architectures=[7]), "linux.seccomp.architectures[0]"),
    (spec(flags=["NOPE"]), "linux.seccomp.flags[0]"),
    (spec(syscalls="x"), "linux.seccomp.syscalls"),
    (spec(syscalls=["x"]), "linux.seccomp.syscalls[0]"),
    ("x", "linux.seccomp"),
])
def test_errors_name_the_field(s, field):
    with pytest.raises(ConfigError) as ei:
        seccomp.build_filter(s)
    assert ei.value.path == field, str(ei.value)


def test_import_is_cheap_and_lazy():
    """pyseccomp is loaded without ctypes.util.find_library (ldconfig/gcc runs)."""
    import subprocess
    import sys
    code = ("import sys, time; t=time.perf_counter(); from ocirt import seccomp; "
            "seccomp._pyseccomp(); print(time.perf_counter()-t); "
            "print('ctypes.util' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[1] == "False", "ctypes.util (find_library) was imported"
    assert float(out[0]) < 0.1
    code = "import sys; import ocirt.lifecycle.create; print('pyseccomp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False"], "the create path imports pyseccomp without linux.seccomp"
