"""linux.memoryPolicy (runtime-spec 1.3): set_mempolicy(2) in the container process
before execve, read back in /proc/self/numa_maps; exec'd processes get it too; every
refusal names its field, before any process starts."""
import pytest

from helpers import assert_error

NUMA = "head -n 1 /proc/self/numa_maps | cut -d ' ' -f 2"


@pytest.mark.parametrize("policy,want", [
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0"}, "interleave:0"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}, "bind=static:0"),
    ({"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]},
     "prefer=relative:0"),
    ({"mode": "MPOL_DEFAULT"}, "default"),
    ({"mode": "MPOL_LOCAL"}, "local"),
    ({"mode": "MPOL_PREFERRED_MANY", "nodes": "0"}, "prefer"),  # "prefer (many):0", cut
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]},
     "bind=balancing:0"),
])
def test_policy_reaches_the_process(ocirt, bundle, policy, want):
    bundle.linux["memoryPolicy"] = policy
    r = ocirt.run_sh(bundle, NUMA)
    if r.returncode != 0 and "set_mempolicy" in r.stderr:
        pytest.skip(f"this kernel refuses {policy}: {r.stderr.strip()}")
    assert r.ok().stdout.strip() == want


def test_exec_gets_the_containers_policy(ocirt, bundle):
    bundle.linux["memoryPolicy"] = {"mode": "MPOL_INTERLEAVE", "nodes": "0"}
    bundle.args("sleep", "600").write()
    cid = ocirt.new_id()
    ocirt.run(cid, bundle, "-d").ok()
    assert ocirt("exec", cid, "sh", "-c", NUMA).ok().stdout.strip() == "interleave:0"
    ocirt.delete(cid, "--force").ok()


@pytest.mark.parametrize("policy,field,words", [
    ({}, "linux.memoryPolicy.mode", "invalid memory policy"),
    ({"mode": "INTERLEAVE", "nodes": "0"}, "linux.memoryPolicy.mode", "invalid memory policy mode"),
    ({"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES", "badflag"]},
     "linux.memoryPolicy.flags[1]", "invalid memory policy flag"),
    ({"nodes": "0-7"}, "linux.memoryPolicy.mode", "invalid memory policy mode"),
    ({"mode": "MPOL_DEFAULT", "nodes": "0-7"}, "linux.memoryPolicy.nodes",
     "mode requires 0 nodes but got 8"),
    ({"mode": "MPOL_BIND", "nodes": "0-9876543210", "flags": []}, "linux.memoryPolicy.nodes",
     "invalid memory policy node"),
    ({"mode": "MPOL_BIND", "nodes": "x"}, "linux.memoryPolicy.nodes", "nodes"),
    ({"mode": "MPOL_BIND", "nodes": "4095"}, "linux.memoryPolicy.nodes", "this host has"),
    ({"mode": "MPOL_BIND"}, "linux.memoryPolicy.nodes", "at least one node"),
])
def test_refusals(ocirt, bundle, policy, field, words):
    bundle.linux["memoryPolicy"] = policy
    bundle.write()
    assert_error(ocirt.run(ocirt.new_id(), bundle), field, words)
    assert ocirt.state_dirs() == []
