"""ocirt.process.launcher: when create may fork init itself, without an intermediate."""
import pytest

from ocirt.process.launcher import InitContext, _direct


def _ctx(namespaces, rootless=False):
    ctx = InitContext({"linux": {"namespaces": namespaces}}, "/b", "/b/rootfs", {})
    ctx.rootless = rootless
    return ctx


PLAIN = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")]


def test_plain_namespaces_need_no_intermediate():
    assert _direct(_ctx(PLAIN))
    assert _direct(_ctx([]))
    assert _direct(_ctx([{"type": "mount"}]))  # no pid namespace: an ordinary child
    # joined by init itself after the placement (a pod's network, a sandbox's ipc)
    assert _direct(_ctx(PLAIN[:1] + [{"type": "network", "path": "/var/run/netns/x"},
                                     {"type": "ipc", "path": "/proc/1/ns/ipc"}]))


@pytest.mark.parametrize("extra", [
    {"type": "user"},                                 # the parent writes its maps first
    {"type": "time"},                                 # offsets before any process is in it
    {"type": "pid", "path": "/proc/1/ns/pid"},        # setns: only children enter it
])
def test_what_needs_the_intermediate(extra):
    nss = [n for n in PLAIN if n["type"] != extra["type"]] + [extra]
    assert not _direct(_ctx(nss))


def test_rootless_keeps_the_intermediate():
    assert not _direct(_ctx(PLAIN, rootless=True))
