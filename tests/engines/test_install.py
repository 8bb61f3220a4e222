"""`ocirt install` / `ocirt uninstall`: ocirt in Docker's daemon.json.

The file tests run the CLI on files in a temporary directory; the last tests change
the session dockerd's daemon.json, send it SIGHUP and check that `docker info` lists
(then no longer lists) the runtime, and that a container runs on it.
"""
import json
import os
import stat
import subprocess
import time

import pytest

import harness as h

CLI = h.OCIRT_CLI


def ocirt(*args):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=30)


def load(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture
def cfg(tmp_path):
    return str(tmp_path / "etc-docker" / "daemon.json")


def test_install_creates_the_file(cfg):
    r = ocirt("install", "--config", cfg)
    assert r.returncode == 0, r.stderr
    assert load(cfg) == {"runtimes": {"ocirt": {"path": CLI}}}
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o644
    assert "reload" in r.stdout


def test_install_keeps_other_keys_and_is_idempotent(cfg):
    os.makedirs(os.path.dirname(cfg))
    before = {"debug": True, "log-opts": {"max-size": "10m"},
              "runtimes": {"other": {"path": "/usr/bin/other", "runtimeArgs": ["--x"]}},
              "storage-driver": "overlay2"}
    with open(cfg, "w") as f:
        json.dump(before, f)
    os.chmod(cfg, 0o600)
    r = ocirt("install", "--config", cfg, "--runtime", "ocirt", "--path", "/bin/true",
              "--runtime-arg=--debug")
    assert r.returncode == 0, r.stderr
    after = load(cfg)
    assert list(after) == list(before)
    assert after["runtimes"] == {"other": before["runtimes"]["other"],
                                 "ocirt": {"path": "/bin/true", "runtimeArgs": ["--debug"]}}
    assert {k: v for k, v in after.items() if k != "runtimes"} == \
        {k: v for k, v in before.items() if k != "runtimes"}
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o600
    ino, text = os.stat(cfg).st_ino, open(cfg).read()
    r = ocirt("install", "--config", cfg, "--runtime", "ocirt", "--path", "/bin/true",
              "--runtime-arg=--debug")
    assert r.returncode == 0 and "nothing changed" in r.stdout, r.stdout + r.stderr
    assert os.stat(cfg).st_ino == ino and open(cfg).read() == text
    assert os.listdir(os.path.dirname(cfg)) == ["daemon.json"]  # no temporary file left


def test_install_default_and_uninstall(cfg):
    assert ocirt("install", "--config", cfg, "--default").returncode == 0
    assert load(cfg) == {"runtimes": {"ocirt": {"path": CLI}}, "default-runtime": "ocirt"}
    r = ocirt("uninstall", "--config", cfg)
    assert r.returncode == 0, r.stderr
    assert load(cfg) == {}
    r = ocirt("uninstall", "--config", cfg)
    assert r.returncode == 0 and "nothing changed" in r.stdout


def test_uninstall_keeps_the_rest(cfg):
    os.makedirs(os.path.dirname(cfg))
    with open(cfg, "w") as f:
        json.dump({"runtimes": {"a": {"path": "/a"}, "ocirt": {"path": "/x"}},
                   "default-runtime": "a", "debug": False}, f)
    assert ocirt("uninstall", "--config", cfg).returncode == 0
    assert load(cfg) == {"runtimes": {"a": {"path": "/a"}}, "default-runtime": "a",
                         "debug": False}


def test_install_through_a_symlink(tmp_path):
    real = tmp_path / "real.json"
    real.write_text('{"debug": true}')
    link = tmp_path / "daemon.json"
    link.symlink_to(real)
    assert ocirt("install", "--config", str(link), "--path", "/bin/true").returncode == 0
    assert link.is_symlink()
    assert load(real) == {"debug": True, "runtimes": {"ocirt": {"path": "/bin/true"}}}


@pytest.mark.parametrize("content, what", [
    ('{"debug": true,', "not valid JSON"),
    ('["runtimes"]', "not an object"),
    ('{"runtimes": ["ocirt"]}', "runtimes"),
    (b'{"debug": "\xff"}', "UTF-8"),
])
def test_malformed_file_is_an_error_and_left_alone(cfg, content, what):
    os.makedirs(os.path.dirname(cfg))
    data = content if isinstance(content, bytes) else content.encode()
    with open(cfg, "wb") as f:
        f.write(data)
    for verb in ("install", "uninstall"):
        r = ocirt(verb, "--config", cfg)
        assert r.returncode == 1
        err = r.stderr.strip()
        assert "\n" not in err and "Traceback" not in err, err
        assert cfg in err and what in err and "nothing changed" in err, err
        with open(cfg, "rb") as f:
            assert f.read() == data
    assert os.listdir(os.path.dirname(cfg)) == ["daemon.json"]


def test_bad_arguments(cfg):
    r = ocirt("install", "--config", cfg, "--runtime", "runc")
    assert r.returncode == 1 and "reserves" in r.stderr
    r = ocirt("install", "--config", cfg, "--path", "/nonexistent/ocirt")
    assert r.returncode == 1 and "/nonexistent/ocirt" in r.stderr
    assert not os.path.exists(cfg)


def _runtimes(dockerd):
    return json.loads(dockerd.docker("info", "--format", "{{json .Runtimes}}").stdout)


def _wait_runtimes(dockerd, pred, what):
    end = time.monotonic() + 15
    while time.monotonic() < end:
        rts = _runtimes(dockerd)
        if pred(rts):
            return rts
        time.sleep(0.2)
    raise AssertionError(f"dockerd: {what}; it lists {sorted(rts)}")


def test_dockerd_picks_it_up_on_sighup(dockerd, ocirt_bin):
    """`ocirt install` on the daemon's own file, SIGHUP: docker info lists the runtime
    and containers run on it; `ocirt uninstall`, SIGHUP: gone, the rest untouched."""
    before = load(dockerd.config)
    r = ocirt("install", "--config", dockerd.config, "--runtime", "ocirt-hup",
              "--path", ocirt_bin)
    assert r.returncode == 0, r.stderr
    try:
        dockerd.hup()
        rts = _wait_runtimes(dockerd, lambda rts: "ocirt-hup" in rts, "no ocirt-hup runtime")
        assert rts["ocirt-hup"]["path"] == ocirt_bin
        r = dockerd.docker("run", "--rm", "--runtime=ocirt-hup", "--network=none",
                           "ocirt-busybox", "echo", "via ocirt-hup")
        assert r.stdout == "via ocirt-hup\n"
    finally:
        r = ocirt("uninstall", "--config", dockerd.config, "--runtime", "ocirt-hup")
        dockerd.hup()
    assert r.returncode == 0, r.stderr
    assert load(dockerd.config) == before
    _wait_runtimes(dockerd, lambda rts: "ocirt-hup" not in rts and "ocirt" in rts,
                   "ocirt-hup still listed")
