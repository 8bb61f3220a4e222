"""The runtime-spec version ocirt speaks (1.3.0) is the same everywhere it is said, and a
config's fields ocirt does not know are listed once in a warning, never dropped without
a word; the container still runs (engines send their own ociVersion)."""
import json

from helpers import OCIRT, assert_error

import subprocess
import tempfile

VERSION = "1.3.0"


def warnings(stderr):
    return [ln for ln in stderr.splitlines() if "level=warning" in ln]


def test_every_document_says_the_same_version(ocirt, bundle):
    feats = json.loads(ocirt("features").ok().stdout)
    assert feats["ociVersionMax"] == VERSION
    assert f"spec: {VERSION}" in ocirt("--version").ok().stdout
    with tempfile.TemporaryDirectory() as d:
        spec = subprocess.run([OCIRT, "spec", "--bundle", d], capture_output=True, text=True)
        assert spec.returncode == 0, spec.stderr
        with open(f"{d}/config.json") as f:
            assert json.load(f)["ociVersion"] == VERSION
    bundle.args("sleep", "600").write()
    cid = ocirt.new_id()
    ocirt.create(cid, bundle).ok()
    assert ocirt.state(cid)["ociVersion"] == VERSION
    ocirt.delete(cid, "--force").ok()


def test_known_fields_give_no_warning(ocirt, bundle):
    bundle.linux["memoryPolicy"] = {"mode": "MPOL_DEFAULT"}
    bundle.write()
    r = ocirt.run(ocirt.new_id(), bundle).ok()
    assert warnings(r.stderr) == []


def test_unknown_fields_are_listed_once_and_the_container_runs(ocirt, bundle):
    bundle.config["ociVersion"] = "1.4.0"
    bundle.linux["futureThing"] = {"on": True}
    bundle.config["process"]["user"]["colour"] = "blue"
    bundle.config["mounts"][0]["newOption"] = 1
    bundle.args("sh", "-c", "echo ran").write()
    for _ in range(2):  # the second run takes the schema verdict from the cache
        r = ocirt.run(ocirt.new_id(), bundle).ok()
        assert r.stdout.strip() == "ran"
        w = warnings(r.stderr)
        assert len(w) == 1, r.stderr
        assert "ociVersion 1.4.0 is newer than ocirt's 1.3.0" in w[0]
        for field in ("process.user.colour", "mounts[0].newOption", "linux.futureThing"):
            assert field in w[0]


def test_an_unknown_limit_is_refused_not_warned_about(ocirt, bundle):
    bundle.linux.setdefault("resources", {}).setdefault("memory", {})["newKnob"] = 1
    bundle.write()
    assert_error(ocirt.run(ocirt.new_id(), bundle), "linux.resources.memory.newKnob")
    assert ocirt.state_dirs() == []


def test_an_unknown_field_in_an_older_config_is_named_too(ocirt, bundle):
    bundle.config["ociVersion"] = "1.0.2"
    bundle.config["root"]["readOnly"] = True  # a typo of readonly: said, not silently dropped
    bundle.write()
    r = ocirt.run(ocirt.new_id(), bundle).ok()
    w = warnings(r.stderr)
    assert len(w) == 1 and "root.readOnly" in w[0] and "newer" not in w[0], r.stderr
