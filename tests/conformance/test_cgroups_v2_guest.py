"""The cgroup v2 tests, for real: test_cgroups.py and test_cgroups_v2.py run inside
the qemu guest (tests/vm: a pure cgroup v2 kernel, every controller at
/sys/fs/cgroup), through the same real CLI. On a v2 host they also run directly."""
import os

from helpers import guest_harness

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def test_cgroup_v2_suite_in_the_guest():
    run_in_guest = guest_harness("cgroup v2 tests").run_in_guest
    # By default only the v2-specific file; OCIRT_TEST_V2_FULL=1 adds the v1-and-v2 file
    # (the whole run takes 10-20 minutes
    # under emulation)
    files = "tests/conformance/test_cgroups_v2.py"
    # the judge's verdict as root on v2 too (issue 17): memory.peak, memory.events, cpu.stat
    files += "".join(f" tests/conformance/test_judge.py::{t}" for t in (
        "test_normal_exit_and_its_figures", "test_oom_kill_is_counted_not_guessed",
        "test_wall_limit_kills_every_process_of_the_container"))
    if os.environ.get("OCIRT_TEST_V2_FULL", "0") == "1":
        files += " tests/conformance/test_cgroups.py"
    cmd = (f"cd {REPO} && OCIRT_IN_GUEST=1 {REPO}/.venv/bin/python -m pytest -q -rs "
           f"-p no:cacheprovider {files} 2>&1")
    rc, out = run_in_guest(cmd, timeout=2400)
    print(out)
    assert rc == 0, f"cgroup v2 suite failed in the guest (rc {rc}):\n{out[-6000:]}"
    assert " passed" in out, out[-3000:]
