"""docs/kubernetes.md's containerd snippet, checked: a containerd of our own is started
with the TOML block from that page (BinaryName pointed at the working tree's ocirt,
Root at this session's directory), its CRI plugin is asked for its status over the
CRI gRPC socket and must list the `ocirt` handler, and then a pod runs on it the way
the kubelet runs a pod with `runtimeClassName: ocirt`: RunPodSandbox with
runtime_handler "ocirt", CreateContainer, StartContainer, ExecSync.

There is no CRI client in Debian: the CRI messages are encoded here (a few fields of
k8s.io/cri-api's runtime.v1 api.proto) and sent with python3-grpcio, run by the
system python3 (the package's interpreter), as raw bytes.
"""
import json
import os
import re
import subprocess
import time

import pytest

import harness as h

DOC = os.path.join(h.REPO, "docs", "kubernetes.md")
SANDBOX_REF = "docker.io/library/ocirt-pause:latest"
IMAGE_REF = "docker.io/library/ocirt-busybox:latest"


# ---------------------------------------------------------------- protobuf, by hand

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb(*fields):
    """Encode (field number, value) pairs: int/bool -> varint, str/bytes -> bytes,
    tuple -> an embedded message (already encoded with pb), list -> repeated."""
    out = b""
    for num, val in fields:
        if val is None:
            continue
        vals = val if isinstance(val, list) else [val]
        for v in vals:
            if isinstance(v, bool) or isinstance(v, int):
                out += _varint(num << 3) + _varint(int(v))
            else:
                v = v.encode() if isinstance(v, str) else v
                out += _varint(num << 3 | 2) + _varint(len(v)) + v
    return out


def unpb(data):
    """Decode one message level: {field number: [int or bytes, ...]}."""
    out, i = {}, 0
    while i < len(data):
        key = shift = 0
        while True:
            b = data[i]
            i += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        num, wt = key >> 3, key & 7
        if wt == 0:
            v = shift = 0
            while True:
                b = data[i]
                i += 1
                v |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
        elif wt == 2:
            n = shift = 0
            while True:
                b = data[i]
                i += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            v = data[i:i + n]
            i += n
        elif wt == 1:
            v, i = data[i:i + 8], i + 8
        elif wt == 5:
            v, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        out.setdefault(num, []).append(v)
    return out


TRANSPORT = r"""
import sys, grpc
sock, method, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
call = grpc.insecure_channel("unix://" + sock).unary_unary(method)
try:
    sys.stdout.buffer.write(call(sys.stdin.buffer.read(), timeout=timeout))
except grpc.RpcError as e:
    sys.stderr.write(f"{e.code().name}: {e.details()}\n")
    sys.exit(1)
"""


class CRI:
    def __init__(self, containerd):
        self.containerd = containerd
        self.sock = containerd.sock

    def call(self, service, method, req=b"", timeout=60):
        r = subprocess.run(["/usr/bin/python3", "-c", TRANSPORT, self.sock,
                            f"/runtime.v1.{service}/{method}", str(timeout)],
                           input=req, capture_output=True, timeout=timeout + 10)
        if r.returncode:
            raise AssertionError(f"CRI {method}: {r.stderr.decode().strip()}\n"
                                 f"containerd's log ends:\n{self.containerd.daemon.tail(15)}")
        return unpb(r.stdout)

    def rt(self, method, req=b"", timeout=60):
        return self.call("RuntimeService", method, req, timeout)


# ---------------------------------------------------------------- the containerd

def doc_toml():
    """The first ```toml block of docs/kubernetes.md."""
    with open(DOC) as f:
        text = f.read()
    m = re.search(r"```toml\n(.*?)```", text, re.S)
    assert m, f"no toml block in {DOC}"
    return m.group(1)


@pytest.fixture(scope="module")
def cri(session_dir, rootfs_tar, ocirt_bin, tag):
    h.install_packages(h.PACKAGES["cri"])
    base = os.path.join(session_dir, "k")
    os.makedirs(os.path.join(base, "cni"))
    snippet = doc_toml()
    assert 'BinaryName = "/usr/local/bin/ocirt"' in snippet, snippet
    # The doc's block, verbatim but for: the binary (the working tree's), the runtime's
    # --root (this session's, not /run/containerd/runc), and `version = 2` (the
    # harness's config file already starts with it).
    snippet = snippet.replace("/usr/local/bin/ocirt", ocirt_bin)
    snippet = snippet.replace("version = 2\n", "")
    snippet = snippet.replace(f'BinaryName = "{ocirt_bin}"',
                              f'BinaryName = "{ocirt_bin}"\n    Root = "{base}/rt"')
    cri_cfg = f"""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_REF}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  # This machine lacks CAP_SYS_RESOURCE: no runtime may lower oom_score_adj (the
  # sandbox asks for -998); keep the adjustments at or above containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{base}/cni"
    conf_dir = "{base}/cni"
# As in `containerd config default`: the default runtime, runc (without it the CRI
# plugin refuses the config: default_runtime_name names no runtime).
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
""" + snippet
    c = h.Containerd(base, extra=cri_cfg, disabled=(), tag="containerd-cri")
    try:
        sandbox = os.path.join(session_dir, "ocirt-pause.tar")
        h.oci_archive(sandbox, rootfs_tar, SANDBOX_REF, cmd=("sleep", "1000000"))
        image = os.path.join(session_dir, "ocirt-busybox-k8s.tar")
        h.oci_archive(image, rootfs_tar, IMAGE_REF)
        c.ctr("k8s.io", "image", "import", sandbox)
        c.ctr("k8s.io", "image", "import", image)
        c.tag = f"/{tag}-cri"
        c.base = base
        c.cri = CRI(c)
        yield c
    finally:
        c.stop()
        h.kill_pids(h.cgroup_pids(f"{tag}-cri"))
        time.sleep(0.2)
        h.remove_cgroups(f"{tag}-cri")


def test_cri_loads_the_ocirt_handler(cri, ocirt_bin):
    resp = cri.cri.rt("Status", pb((1, True)))  # StatusRequest{verbose: true}
    info = {}
    for entry in resp.get(2, []):  # map<string, string> info
        e = unpb(entry)
        info[e[1][0].decode()] = e[2][0].decode()
    conf = json.loads(info["config"])
    rt = conf["containerd"]["runtimes"]["ocirt"]
    assert rt["runtimeType"] == "io.containerd.runc.v2", rt
    assert rt["options"]["BinaryName"] == ocirt_bin, rt
    # RuntimeReady is true (NetworkReady is not: no CNI here, and host-network pods need none).
    conds = [unpb(c) for c in unpb(resp[1][0]).get(1, [])]
    ready = {c[1][0].decode(): bool(c.get(2, [0])[0]) for c in conds}
    assert ready.get("RuntimeReady") is True, ready


@pytest.fixture(scope="module")
def pod(cri):
    """A host-network pod sandbox run with runtime_handler "ocirt"."""
    logdir = os.path.join(cri.base, "pods", "hello")
    os.makedirs(logdir)
    sandbox_config = pb(
        (1, pb((1, "hello-ocirt"), (2, "uid-hello-ocirt"), (3, "default"), (4, 0))),
        # no hostname (2): a host-network pod has the node's, as the kubelet does it
        (3, logdir),
        # linux: cgroup_parent, security_context{namespace_options{network: NODE}}
        (8, pb((1, cri.tag), (2, pb((1, pb((1, 2), (2, 0), (3, 0)))))))
    )
    resp = cri.cri.rt("RunPodSandbox", pb((1, sandbox_config), (2, "ocirt")), timeout=120)
    sid = resp[1][0].decode()
    try:
        yield sid, sandbox_config, logdir
    finally:
        try:
            cri.cri.rt("StopPodSandbox", pb((1, sid)), timeout=60)
        finally:
            cri.cri.rt("RemovePodSandbox", pb((1, sid)), timeout=60)


def test_pod_runs_on_ocirt(cri, pod, is_ocirt):
    sid, sandbox_config, logdir = pod
    # The sandbox ("pause") container runs, created by ocirt: its state is in ocirt's root.
    ns_root = os.path.join(cri.base, "rt", "k8s.io")
    assert os.path.isdir(os.path.join(ns_root, sid)), os.listdir(ns_root)
    cfg = pb(
        (1, pb((1, "hello"), (2, 0))),
        (2, pb((1, IMAGE_REF))),
        (3, ["sh", "-c", "echo hello from a pod on ocirt; exec sleep 1000"]),
        (11, "hello.log"),
    )
    cid = cri.cri.rt("CreateContainer", pb((1, sid), (2, cfg), (3, sandbox_config)),
                     timeout=120)[1][0].decode()
    cri.cri.rt("StartContainer", pb((1, cid)), timeout=120)
    with open(os.path.join(ns_root, cid, "state.json")) as f:
        st = json.load(f)
    if is_ocirt:
        assert st["id"] == cid
    log = os.path.join(logdir, "hello.log")
    end = time.monotonic() + 30
    while time.monotonic() < end and not (os.path.exists(log) and open(log).read()):
        time.sleep(0.1)
    with open(log) as f:
        assert re.search(r" stdout F hello from a pod on ocirt$", f.read(), re.M)
    # ContainerStatus: CONTAINER_RUNNING (1)
    status = unpb(cri.cri.rt("ContainerStatus", pb((1, cid)))[1][0])
    assert status[3][0] == 1, status


def test_pod_exec_sync(cri, pod):
    """ExecSync (what `kubectl exec` without a terminal becomes) in a container of the pod."""
    sid, sandbox_config, _ = pod
    cfg = pb((1, pb((1, "exec-target"), (2, 0))), (2, pb((1, IMAGE_REF))),
             (3, ["sleep", "1000"]))
    cid = cri.cri.rt("CreateContainer", pb((1, sid), (2, cfg), (3, sandbox_config)),
                     timeout=120)[1][0].decode()
    cri.cri.rt("StartContainer", pb((1, cid)), timeout=120)
    resp = cri.cri.rt("ExecSync", pb((1, cid), (2, ["sh", "-c", "echo out; exit 3"]),
                                     (3, 30)), timeout=60)
    assert resp.get(1, [b""])[0] == b"out\n", resp
    assert resp.get(3, [0])[0] == 3, resp
