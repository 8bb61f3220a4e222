"""ocirt's capability table against python-prctl's (the design card's library for
capabilities; ocirt sets them through the shim, see docs/architecture.md, and uses
python-prctl here as the independent reference)."""
import pytest

from ocirt import capabilities

prctl = pytest.importorskip("prctl")


def test_every_name_has_prctls_number():
    for name, num in capabilities.NUMBERS.items():
        if hasattr(prctl, name):
            assert getattr(prctl, name) == num, name


def test_ocirt_knows_every_capability_prctl_knows():
    theirs = {"CAP_" + n.upper() for n in prctl.ALL_CAP_NAMES} - {"CAP_LAST_CAP"}
    assert theirs <= set(capabilities.NAMES)


def test_parse_gives_what_prctl_reads_back_for_this_process():
    # the bounding set of the test process, named by prctl and by ocirt alike
    have = [n for n in capabilities.NAMES if hasattr(prctl, n)
            and getattr(prctl.capbset, n[4:].lower())]
    sets = capabilities.parse({"bounding": have})
    assert sorted(sets["bounding"]) == sorted(getattr(prctl, n) for n in have)
