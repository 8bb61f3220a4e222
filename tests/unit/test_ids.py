"""Container ids: what ocirt.state.check_id accepts and refuses."""
import pytest

from ocirt.errors import OcirtError
from ocirt.state import Record as Container, check_id


@pytest.mark.parametrize("cid", [
    "a", "abc123", "my-container_1.2+x", "0" * 64, "x" * 1024,
    "4b825dc642cb6eb9a060e54bf8d69288fbee4904",  # engines use hex ids
])
def test_valid(cid):
    assert check_id(cid) == cid


@pytest.mark.parametrize("cid", [
    "", ".", "..", "a/b", "/abs", "../up", "x" * 1025, "new\nline", "tab\tid", "nul\0id",
    "del\x7f",
])
def test_invalid(cid):
    with pytest.raises(OcirtError) as e:
        check_id(cid)
    msg = str(e.value)
    assert "\n" not in msg
    assert "id" in msg


def test_container_checks_id(tmp_path):
    with pytest.raises(OcirtError):
        Container(str(tmp_path), "../escape")
    assert not (tmp_path.parent / "escape").exists()


def test_container_dir_is_under_root(tmp_path):
    c = Container(str(tmp_path), "abc")
    assert c.dir == str(tmp_path / "abc")
