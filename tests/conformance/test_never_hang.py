"""Never hang: every lifecycle verb against a container whose init is stopped
(SIGSTOP) or frozen (paused) returns within a few seconds, with success or one
error line, and `delete --force` always cleans up."""
import os
import signal
import time

import pytest

from helpers import assert_error

BOUND = 5.0  # seconds: each verb, whatever state the init is in


def timed(ocirt, *args):
    t = time.monotonic()
    r = ocirt(*args, timeout=30)
    took = time.monotonic() - t
    assert took < BOUND, f"{args} took {took:.1f} s: {r!r}"
    assert "Traceback" not in r.stderr, r
    return r


def _created(ocirt, bundle, start):
    cid = ocirt.new_id()
    bundle.args("sleep", "600").write()
    ocirt.create(cid, bundle).ok()
    if start:
        ocirt.start(cid).ok()
    return cid, ocirt.state(cid)["pid"]


VERBS = [("state",), ("ps",), ("events", "--stats"), ("update", "--pids-limit", "50"),
         ("exec", "@", "true"), ("kill", "@", "0"), ("kill", "@", "TERM"),
         ("kill", "--all", "@", "USR1"), ("pause",), ("resume",)]


def _argv(verb, cid):
    return [cid if a == "@" else a for a in verb] if "@" in verb else [*verb, cid]


@pytest.mark.parametrize("started", [False, True], ids=["created", "running"])
def test_every_verb_on_a_stopped_init(ocirt, bundle, started):
    cid, pid = _created(ocirt, bundle, started)
    os.kill(pid, signal.SIGSTOP)
    try:
        for verb in VERBS:
            timed(ocirt, *_argv(verb, cid))
        if not started:
            r = timed(ocirt, "start", cid)
            assert_error(r, cid, "stopped", "kill -CONT")
            assert ocirt.status(cid) == "created"
        timed(ocirt, "delete", cid)  # a created one goes; a running one is refused
    finally:
        os.kill(pid, signal.SIGCONT)
    timed(ocirt, "delete", "--force", cid).ok()


@pytest.mark.parametrize("started", [False, True], ids=["created", "running"])
def test_every_verb_on_a_frozen_init(ocirt, bundle, started):
    cid, pid = _created(ocirt, bundle, started)
    ocirt("pause", cid).ok()
    for verb in VERBS:
        if verb[0] == "resume":
            continue  # would thaw it
        timed(ocirt, *_argv(verb, cid))
    assert ocirt.status(cid) == "paused"
    assert_error(timed(ocirt, "delete", cid), "paused")
    assert_error(timed(ocirt, "start", cid), "paused")
    timed(ocirt, "kill", cid, "KILL").ok()  # a frozen init dies once thawed: ocirt thaws it
    deadline = time.monotonic() + BOUND
    while ocirt.status(cid) != "stopped":
        assert time.monotonic() < deadline, "SIGKILL of a paused container did not kill it"
        time.sleep(0.05)
    timed(ocirt, "delete", cid).ok()


def test_delete_force_of_a_frozen_and_stopped_init(ocirt, bundle):
    cid, pid = _created(ocirt, bundle, True)
    os.kill(pid, signal.SIGSTOP)
    ocirt("pause", cid).ok()
    timed(ocirt, "delete", "--force", cid).ok()
    assert ocirt.state_dirs() == []


def test_start_gives_up_on_an_init_stopped_after_its_release(ocirt, bundle):
    """A startContainer hook (run by init, after `start` has released it) stops init:
    `start` stops waiting after a bound, says why, and the container can still be
    deleted. No pid namespace, so the hook may stop its parent."""
    cid = ocirt.new_id()
    bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "pid"]
    bundle.config["hooks"] = {"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "kill -STOP $PPID"]}]}
    bundle.args("true").write()
    ocirt.create(cid, bundle).ok()
    pid = ocirt.state(cid)["pid"]
    try:
        line = assert_error(timed(ocirt, "start", cid), cid, "was stopped", "kill -CONT")
        assert str(pid) in line
    finally:
        os.kill(pid, signal.SIGCONT)
    timed(ocirt, "delete", "--force", cid).ok()
