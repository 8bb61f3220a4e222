"""state and list: read-only views of the state directory."""
from .. import state as statemod


def state(cid, root=None):
    c = statemod.Container(root or statemod.default_root(), cid)
    c.load()
    return c.oci_state()


def list_containers(root=None):
    root = root or statemod.default_root()
    out = []
    for cid in statemod.list_ids(root):
        try:
            out.append(statemod.fast_oci_state(f"{root}/{cid}") or state(cid, root))
        except Exception:  # noqa: BLE001 - a container being created or deleted
            continue
    return out
