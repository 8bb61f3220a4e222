"""ocirt.lifecycle.kill.parse_signal: numbers, NAMES and SIGNAMES (runc's forms)."""
import signal

import pytest

from ocirt.errors import OcirtError
from ocirt.lifecycle.kill import parse_signal


@pytest.mark.parametrize("spec,num", [
    ("KILL", 9), ("SIGKILL", 9), ("9", 9), ("kill", 9), ("sigkill", 9), (9, 9),
    ("TERM", 15), ("SIGTERM", 15), ("15", 15), (" 15 ", 15),
    ("USR1", signal.SIGUSR1), ("SIGUSR2", signal.SIGUSR2), ("HUP", 1), ("INT", 2),
    ("QUIT", 3), ("CONT", signal.SIGCONT), ("STOP", signal.SIGSTOP),
    ("WINCH", signal.SIGWINCH), ("RTMIN", signal.SIGRTMIN), ("SIGRTMAX", signal.SIGRTMAX),
    ("64", 64), ("1", 1), ("0", 0), (0, 0),
])
def test_valid(spec, num):
    assert parse_signal(spec) == num


@pytest.mark.parametrize("spec", [
    "", "65", "100", "-9", "FOO", "SIGFOO", "SIG_DFL", "SIG_IGN", "_DFL", "9x",
    "KILL9", 65, -1,
])
def test_invalid(spec):
    with pytest.raises(OcirtError) as e:
        parse_signal(spec)
    assert "signal" in str(e.value)
    assert "\n" not in str(e.value)
