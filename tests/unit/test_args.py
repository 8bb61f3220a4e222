"""ocirt.cli: urfave/cli-style flag parsing (runc's command line)."""
import pytest

from ocirt.cli import Flags, need_id
from ocirt.errors import OcirtError

SPEC = {
    "bundle": (("b",), str, "."),
    "pid-file": ((), str, None),
    "detach": (("d",), bool, False),
    "preserve-fds": ((), int, 0),
    "env": (("e",), list, []),
}


def parse(argv, interspersed=False):
    return Flags(SPEC).parse(argv, interspersed=interspersed)


def test_defaults():
    vals, pos = parse([])
    assert vals == {"bundle": ".", "pid-file": None, "detach": False, "preserve-fds": 0,
                    "env": []}
    assert pos == []


@pytest.mark.parametrize("argv", [
    ["--bundle", "/b", "id"], ["-bundle", "/b", "id"], ["-b", "/b", "id"],
    ["--bundle=/b", "id"], ["-b=/b", "id"],
])
def test_value_flag_forms(argv):
    vals, pos = parse(argv)
    assert vals["bundle"] == "/b" and pos == ["id"]


@pytest.mark.parametrize("argv,want", [
    (["-d"], True), (["--detach"], True), (["--detach=true"], True),
    (["--detach=false"], False), (["--detach=1"], True), (["--detach=0"], False),
    (["--detach=FALSE"], False),
])
def test_bool_flag_forms(argv, want):
    vals, _ = parse(argv + ["id"])
    assert vals["detach"] is want


def test_bool_flag_bad_value():
    with pytest.raises(OcirtError, match="detach"):
        parse(["--detach=maybe", "id"])


def test_bool_flag_takes_no_separate_value():
    vals, pos = parse(["--detach", "id"])
    assert vals["detach"] is True and pos == ["id"]


def test_int_flag():
    vals, _ = parse(["--preserve-fds", "3", "id"])
    assert vals["preserve-fds"] == 3
    vals, _ = parse(["--preserve-fds=7", "id"])
    assert vals["preserve-fds"] == 7


def test_int_flag_bad_value():
    with pytest.raises(OcirtError, match="preserve-fds"):
        parse(["--preserve-fds", "three", "id"])


def test_list_flag_accumulates():
    vals, _ = parse(["-e", "A=1", "--env", "B=2", "--env=C=3", "id"])
    assert vals["env"] == ["A=1", "B=2", "C=3"]


def test_list_default_not_shared():
    f = Flags(SPEC)
    a, _ = f.parse(["-e", "X=1"])
    b, _ = f.parse([])
    assert b["env"] == [] and a["env"] == ["X=1"]
    assert SPEC["env"][2] == []


def test_unknown_flag():
    with pytest.raises(OcirtError, match="flag provided but not defined: -nope"):
        parse(["--nope", "id"])


def test_missing_value():
    with pytest.raises(OcirtError, match="flag needs an argument: -bundle"):
        parse(["--bundle"])


def test_flags_stop_at_first_positional():
    """urfave/cli: a flag after the first argument is an argument (runc's habit)."""
    vals, pos = parse(["id", "--detach"])
    assert vals["detach"] is False and pos == ["id", "--detach"]


def test_interspersed():
    vals, pos = parse(["id1", "--detach", "id2"], interspersed=True)
    assert vals["detach"] is True and pos == ["id1", "id2"]


def test_double_dash_ends_flags():
    vals, pos = parse(["--detach", "--", "--bundle", "x"])
    assert vals["detach"] is True and vals["bundle"] == "."
    assert pos == ["--bundle", "x"]


def test_single_dash_is_positional():
    _, pos = parse(["-"])
    assert pos == ["-"]


def test_value_may_start_with_dash():
    vals, _ = parse(["--pid-file", "-weird", "id"])
    assert vals["pid-file"] == "-weird"


def test_need_id():
    assert need_id(["abc"], "start") == "abc"
    with pytest.raises(OcirtError, match='"start" requires a container id'):
        need_id([], "start")
    with pytest.raises(OcirtError, match="one container id"):
        need_id(["a", "b"], "start")
    assert need_id(["a", "b"], "kill", extra_ok=True) == "a"


def test_global_flags_of_main():
    from ocirt.main import _globals
    g, rest = _globals(["--root", "/r", "--log=/l", "--log-format", "json", "--debug",
                        "--systemd-cgroup", "create", "--bundle", "b", "id"])
    assert g["root"] == "/r" and g["log"] == "/l" and g["log-format"] == "json"
    assert g["debug"] is True and g["systemd-cgroup"] is True
    assert rest == ["create", "--bundle", "b", "id"]
