"""config.md Process: args, env, cwd, user (uid, gid, umask, additionalGids),
rlimits, capabilities, noNewPrivileges, oomScoreAdj; config-linux.md
Personality.  Each one read back inside the container."""
import os
import platform

import pytest

from helpers import assert_error

CAPS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_KILL": 5, "CAP_SETGID": 6,
        "CAP_SETUID": 7, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21,
        "CAP_AUDIT_WRITE": 29}


def mask(*names):
    m = 0
    for n in names:
        m |= 1 << CAPS[n]
    return m


def status_fields(text):
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k] = v.strip()
    return out


def caps_of(ocirt, bundle):
    """The container process's own /proc/self/status (cat is the process)."""
    bundle.args("cat", "/proc/self/status").write()
    r = ocirt.run(ocirt.new_id(), bundle).ok()
    f = status_fields(r.stdout)
    return {k: int(f[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}, f


def set_caps(bundle, **sets):
    bundle.process["capabilities"] = {k: list(v) for k, v in sets.items()}


# --- args, env, cwd ------------------------------------------------------------------

def test_args_passed_verbatim(ocirt, bundle):
    bundle.args("sh", "-c", 'printf "%s|" "$0" "$@"', "zero", "a b", "", "c*").write()
    r = ocirt.run(ocirt.new_id(), bundle)
    assert r.ok().stdout == "zero|a b||c*|"


def test_args0_resolved_in_container_path(ocirt, bundle):
    """args[0] has execvp's `file` semantics: looked up in the container's PATH."""
    os.makedirs(os.path.join(bundle.rootfs, "opt/tools"))
    tool = os.path.join(bundle.rootfs, "opt/tools/mytool")
    with open(tool, "w") as f:
        f.write('#!/bin/sh\necho "$@"\n')
    os.chmod(tool, 0o755)
    bundle.process["env"] = [e for e in bundle.process["env"] if not e.startswith("PATH=")]
    bundle.process["env"].append("PATH=/opt/tools:/bin")
    bundle.args("mytool", "found").write()
    r = ocirt.run(ocirt.new_id(), bundle)
    assert r.ok().stdout == "found\n"


def test_args0_absolute(ocirt, bundle):
    bundle.args("/bin/echo", "abs").write()
    assert ocirt.run(ocirt.new_id(), bundle).ok().stdout == "abs\n"


def test_env_exactly_as_configured(ocirt, bundle):
    bundle.process["env"] = ["PATH=/bin", "FOO=bar baz", "EMPTY=", "EQ=a=b", "HOME=/root"]
    bundle.args("env").write()
    r = ocirt.run(ocirt.new_id(), bundle, env={"HOST_ONLY_VAR": "leak"}).ok()
    assert sorted(r.lines) == sorted(["PATH=/bin", "FOO=bar baz", "EMPTY=", "EQ=a=b",
                                      "HOME=/root"])


def test_env_home_from_passwd_when_unset(ocirt, bundle):
    bundle.process["env"] = ["PATH=/bin"]
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.args("sh", "-c", "echo $HOME").write()
    assert ocirt.run(ocirt.new_id(), bundle).ok().stdout == "/home/user\n"


def test_cwd(ocirt, bundle):
    os.makedirs(os.path.join(bundle.rootfs, "work/dir"))
    bundle.process["cwd"] = "/work/dir"
    assert ocirt.run_sh(bundle, "pwd").ok().stdout == "/work/dir\n"


@pytest.mark.parametrize("env", [["HOME="], ["HOME=/override", "HOME="]])
def test_empty_home_is_overridden(ocirt, bundle, env):
    """An empty HOME (the last one wins) is replaced by the user's from /etc/passwd."""
    bundle.process["env"] = bundle.process["env"] + env
    assert ocirt.run_sh(bundle, "echo $HOME").ok().stdout == "/root\n"


def test_cwd_only_root_may_enter(ocirt, bundle):
    """A cwd the user cannot enter but root can (/root, 0700): entered as root before
    the uid change, as runc does; $HOME is still the user's (runc issue 4688)."""
    os.chmod(os.path.join(bundle.rootfs, "root"), 0o700)
    with open(os.path.join(bundle.rootfs, "etc/passwd"), "a") as f:
        f.write("tempuser:x:2000:2000:tempuser:/home/tempuser:/bin/sh\n")
    bundle.process["cwd"] = "/root"
    bundle.process["user"] = {"uid": 2000, "gid": 2000}
    r = ocirt.run_sh(bundle, "pwd; echo $HOME; ls . >/dev/null 2>&1 || echo denied").ok()
    assert r.lines == ["/root", "/home/tempuser", "denied"]


def test_exec_bit_for_root_only_with_cap_dac_override(ocirt, bundle):
    """/bin/busybox executable by its owner (root) alone: uid 1000 cannot run it, and
    can with CAP_DAC_OVERRIDE (the path lookup leaves the decision to execve)."""
    bb = os.path.join(bundle.rootfs, "bin/busybox")
    os.chmod(bb, 0o744)
    bundle.process["user"] = {"uid": 1000, "gid": 100}
    bundle.args("echo", "hi")
    bundle.write()
    assert ocirt.run(ocirt.new_id(), bundle).returncode != 0
    for s in ("bounding", "effective", "inheritable", "ambient", "permitted"):
        bundle.process["capabilities"].setdefault(s, []).append("CAP_DAC_OVERRIDE")
    bundle.write()
    assert ocirt.run(ocirt.new_id(), bundle).ok().stdout == "hi\n"


def test_cwd_default_root(ocirt, bundle):
    assert bundle.process["cwd"] == "/"
    assert ocirt.run_sh(bundle, "pwd").ok().stdout == "/\n"


# --- user --------------------------------------------------------------------------

def test_user_uid_gid(ocirt, bundle):
    bundle.process["user"] = {"uid": 1000, "gid": 1001}
    r = ocirt.run_sh(bundle, "id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups):' /proc/self/status")
    lines = r.ok().lines
    assert lines[:3] == ["1000", "1001", "1001"]
    f = status_fields("\n".join(lines[3:]))
    assert f["Uid"].split() == ["1000"] * 4
    assert f["Gid"].split() == ["1001"] * 4
    assert f["Groups"] == ""


def test_user_additional_gids(ocirt, bundle):
    bundle.process["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 6, 4242]}
    r = ocirt.run_sh(bundle, "grep '^Groups:' /proc/self/status")
    assert sorted(r.ok().stdout.split()[1:], key=int) == ["5", "6", "4242"]


def test_user_root_has_no_supplementary_groups_from_host(ocirt, bundle):
    r = ocirt.run_sh(bundle, "grep '^Groups:' /proc/self/status")
    assert r.ok().stdout.split()[1:] == []


def test_umask(ocirt, bundle):
    bundle.config["root"]["readonly"] = False
    bundle.process["user"] = {"uid": 0, "gid": 0, "umask": 0o027}
    r = ocirt.run_sh(bundle, "umask; touch /tmp/f; mkdir /tmp/d; stat -c %a /tmp/f /tmp/d")
    assert r.ok().lines == ["0027", "640", "750"]


def test_umask_default(ocirt, bundle):
    r = ocirt.run_sh(bundle, "umask")
    assert r.ok().stdout == "0022\n"


def test_user_really_unprivileged(ocirt, bundle):
    """uid 1000 can't write root's files (no capabilities left)."""
    bundle.config["root"]["readonly"] = False
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    r = ocirt.run_sh(bundle, "echo x > /etc/passwd 2>/dev/null; echo rc=$?; "
                             "echo y > /home/user/mine && echo ok")
    assert r.ok().lines == ["rc=1", "ok"]


# --- rlimits ---------------------------------------------------------------------------

def test_rlimits_lowered(ocirt, bundle):
    """rlim_cur and rlim_max MUST match the configured values."""
    bundle.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
        {"type": "RLIMIT_STACK", "soft": 4194304, "hard": 8388608},
    ]
    r = ocirt.run_sh(bundle, "cat /proc/self/limits")
    rows = {}
    for line in r.ok().lines[1:]:
        parts = line.rsplit(None, 3)
        rows[parts[0].strip()] = (parts[1], parts[2])
    assert rows["Max open files"] == ("256", "512")
    assert rows["Max core file size"] == ("0", "0")
    assert rows["Max processes"] == ("300", "400")
    assert rows["Max stack size"] == ("4194304", "8388608")


def test_rlimit_nofile_applied(ocirt, bundle):
    bundle.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
    r = ocirt.run_sh(bundle, "ulimit -n; ulimit -Hn")
    assert r.ok().lines == ["100", "200"]


def test_rlimit_raising_hard_limit_fails_clearly(ocirt, bundle):
    """Without CAP_SYS_RESOURCE a hard limit can't be raised: create fails and
    names the entry (process.rlimits[1]) instead of running with another limit."""
    with open("/proc/self/status") as f:
        capeff = int(status_fields(f.read())["CapEff"], 16)
    if capeff & (1 << 24):
        pytest.skip("this host has CAP_SYS_RESOURCE: raising a hard limit would succeed")
    import resource
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    bundle.process["rlimits"] = [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
                                 {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard + 1000}]
    bundle.write()
    assert_error(ocirt.create(ocirt.new_id(), bundle), "process.rlimits[1]")
    assert ocirt.state_dirs() == []


def test_rlimit_duplicate_type_is_an_error(ocirt, bundle):
    """Duplicated `type` entries: the runtime MUST generate an error."""
    bundle.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
                                 {"type": "RLIMIT_NOFILE", "soft": 50, "hard": 60}]
    bundle.write()
    assert_error(ocirt.create(ocirt.new_id(), bundle), "process.rlimits")
    assert ocirt.state_dirs() == []


def test_rlimit_unknown_type_is_an_error(ocirt, bundle):
    bundle.process["rlimits"] = [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]
    bundle.write()
    assert_error(ocirt.create(ocirt.new_id(), bundle), "process.rlimits[0]")


def test_rlimit_soft_above_hard_is_an_error(ocirt, bundle):
    bundle.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 300, "hard": 200}]
    bundle.write()
    assert_error(ocirt.create(ocirt.new_id(), bundle), "process.rlimits[0]")


# --- capabilities ------------------------------------------------------------------------

def test_capabilities_default_root(ocirt, bundle):
    """ocirt spec's sets: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE."""
    want = mask("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
    caps, _ = caps_of(ocirt, bundle)
    assert caps["CapBnd"] == want
    assert caps["CapEff"] == want
    assert caps["CapPrm"] == want
    assert caps["CapInh"] == 0
    assert caps["CapAmb"] == 0


def test_capabilities_bounding(ocirt, bundle):
    set_caps(bundle, bounding=["CAP_CHOWN", "CAP_KILL"], effective=["CAP_CHOWN", "CAP_KILL"],
             permitted=["CAP_CHOWN", "CAP_KILL"])
    caps, _ = caps_of(ocirt, bundle)
    assert caps["CapBnd"] == mask("CAP_CHOWN", "CAP_KILL")
    assert caps["CapEff"] == mask("CAP_CHOWN", "CAP_KILL")


def test_capabilities_empty(ocirt, bundle):
    set_caps(bundle, bounding=[], effective=[], permitted=[], inheritable=[], ambient=[])
    caps, _ = caps_of(ocirt, bundle)
    assert caps == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}


def test_capabilities_non_root_ambient(ocirt, bundle):
    """A non-root process keeps capabilities through execve only as ambient ones."""
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    nbs = ["CAP_NET_BIND_SERVICE"]
    set_caps(bundle, bounding=nbs + ["CAP_KILL"], effective=nbs, permitted=nbs,
             inheritable=nbs, ambient=nbs)
    caps, f = caps_of(ocirt, bundle)
    assert f["Uid"].split()[0] == "1000"
    assert caps["CapBnd"] == mask("CAP_NET_BIND_SERVICE", "CAP_KILL")
    assert caps["CapAmb"] == mask("CAP_NET_BIND_SERVICE")
    assert caps["CapEff"] == mask("CAP_NET_BIND_SERVICE")
    assert caps["CapPrm"] == mask("CAP_NET_BIND_SERVICE")
    assert caps["CapInh"] == mask("CAP_NET_BIND_SERVICE")


def test_capabilities_non_root_without_ambient(ocirt, bundle):
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    set_caps(bundle, bounding=["CAP_KILL"], effective=["CAP_KILL"], permitted=["CAP_KILL"])
    caps, _ = caps_of(ocirt, bundle)
    assert caps["CapEff"] == 0 and caps["CapPrm"] == 0
    assert caps["CapBnd"] == mask("CAP_KILL")


def test_capability_really_enforced(ocirt, bundle):
    """Without CAP_CHOWN root can't chown; with it, it can."""
    bundle.config["root"]["readonly"] = False
    script = "touch /tmp/f; chown 1000 /tmp/f 2>/dev/null; echo rc=$?"
    set_caps(bundle, bounding=["CAP_KILL"], effective=["CAP_KILL"], permitted=["CAP_KILL"])
    assert ocirt.run_sh(bundle, script).ok().stdout == "rc=1\n"
    set_caps(bundle, bounding=["CAP_CHOWN"], effective=["CAP_CHOWN"], permitted=["CAP_CHOWN"])
    assert ocirt.run_sh(bundle, script).ok().stdout == "rc=0\n"


def test_capability_unknown_name_is_a_warning(ocirt, bundle):
    """runtime-spec >= 1.1: a capability that cannot be mapped is logged as a warning
    and the container runs without it (runtime-tools' 1.0-era check wanted an error:
    docs/compat.md)."""
    set_caps(bundle, bounding=["CAP_KILL", "CAP_NOT_A_CAP"], effective=["CAP_KILL"],
             permitted=["CAP_KILL"])
    bundle.args("cat", "/proc/self/status").write()
    r = ocirt.run(ocirt.new_id(), bundle).ok()
    caps = status_fields(r.stdout)
    assert int(caps["CapBnd"], 16) == mask("CAP_KILL")
    assert "warning" in r.stderr and "process.capabilities.bounding[1]" in r.stderr
    assert "CAP_NOT_A_CAP" in r.stderr


def test_ambient_capability_not_inheritable_is_a_warning(ocirt, bundle):
    """Debian's `runc spec` lists ambient capabilities that are not inheritable: the
    kernel refuses to raise them; the container runs without them, with a warning."""
    set_caps(bundle, bounding=["CAP_KILL", "CAP_CHOWN"], effective=["CAP_KILL"],
             permitted=["CAP_KILL", "CAP_CHOWN"], inheritable=["CAP_CHOWN"],
             ambient=["CAP_KILL", "CAP_CHOWN"])
    bundle.args("cat", "/proc/self/status").write()
    r = ocirt.run(ocirt.new_id(), bundle).ok()
    caps = status_fields(r.stdout)
    assert int(caps["CapAmb"], 16) == mask("CAP_CHOWN")
    assert "can't raise ambient capability CAP_KILL: " in r.stderr
    assert "process.capabilities.ambient" in r.stderr
    assert "CAP_CHOWN" not in r.stderr


def test_user_without_gid_is_gid_0(ocirt, bundle):
    """The spec calls uid and gid REQUIRED; runc and crun take a missing one as 0."""
    bundle.process["user"] = {"uid": 1000}
    r = ocirt.run_sh(bundle, "id -u; id -g").ok()
    assert r.lines == ["1000", "0"]


def test_runc_spec_default_bundle_runs(ocirt, bundle):
    """The config.json of Debian's `runc spec` (ambient capabilities that are not
    inheritable, terminal true) runs as it is but for the terminal and its args."""
    import json
    with open(os.path.join(os.path.dirname(__file__), "..", "unit", "data",
                           "runc-spec.json")) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "echo hello; grep CapAmb /proc/self/status"]
    bundle.config = cfg
    bundle.write()
    r = ocirt.run(ocirt.new_id(), bundle).ok()
    assert r.stdout.splitlines()[0] == "hello"
    assert r.stdout.splitlines()[1].split()[1] == "0000000000000000"
    assert "can't raise ambient capability CAP_AUDIT_WRITE" in r.stderr


# --- noNewPrivileges, oomScoreAdj, personality ------------------------------------------

@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(ocirt, bundle, nnp):
    bundle.process["noNewPrivileges"] = nnp
    r = ocirt.run_sh(bundle, "grep '^NoNewPrivs:' /proc/self/status")
    assert r.ok().stdout.split()[1] == ("1" if nnp else "0")


def test_oom_score_adj_set(ocirt, bundle):
    """If set, the runtime MUST set oom_score_adj to the value."""
    bundle.process["oomScoreAdj"] = 345
    assert ocirt.run_sh(bundle, "cat /proc/self/oom_score_adj").ok().stdout == "345\n"


def test_oom_score_adj_unset_is_unchanged(ocirt, bundle):
    """If not set, the runtime MUST NOT change it: the container gets the value
    of the process that ran ocirt (here 77)."""
    bundle.process.pop("oomScoreAdj", None)
    bundle.sh("cat /proc/self/oom_score_adj").write()

    def preexec():
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("77")
    r = ocirt.run(ocirt.new_id(), bundle, preexec_fn=preexec)
    assert r.ok().stdout == "77\n"


@pytest.mark.skipif(platform.machine() != "x86_64", reason="LINUX32 check written for x86_64")
def test_personality_linux32(ocirt, bundle):
    bundle.linux["personality"] = {"domain": "LINUX32"}
    assert ocirt.run_sh(bundle, "uname -m").ok().stdout.strip() in ("i686", "i386")


@pytest.mark.skipif(platform.machine() != "x86_64", reason="LINUX32 check written for x86_64")
def test_personality_reaches_exec_processes(ocirt, bundle):
    bundle.linux["personality"] = {"domain": "LINUX32"}
    bundle.args("sleep", "600").write()
    cid = ocirt.new_id()
    ocirt.run(cid, bundle, "-d").ok()
    assert ocirt("exec", cid, "uname", "-m").ok().stdout.strip() in ("i686", "i386")
    ocirt.delete(cid, "--force").ok()


def test_personality_linux(ocirt, bundle):
    bundle.linux["personality"] = {"domain": "LINUX"}
    assert ocirt.run_sh(bundle, "uname -m").ok().stdout.strip() == platform.machine()


def test_personality_unknown_domain_is_an_error(ocirt, bundle):
    bundle.linux["personality"] = {"domain": "SVR4"}
    bundle.write()
    assert_error(ocirt.create(ocirt.new_id(), bundle), "linux.personality")
