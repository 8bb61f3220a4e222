# make demo: set up what is missing, then run a busybox container through `ocirt run`.
# make test: the same set-up, then every test.
# Debian's interpreter (static, PGO+LTO) starts ~5 ms faster than a shared-library
# build such as pyenv's; every ocirt command pays start-up, so the venv uses it.
PY       ?= /usr/bin/python3
VENV     := .venv
OCIRT    := $(VENV)/bin/ocirt
# ocirt's compiled modules in one file, which the entry script imports from
# (ocirt/_bundle.py); rewritten whenever a module changes.
BUNDLE   := $(VENV)/lib/ocirt-modules.bundle
DEMO     := build/demo
# What the runtime and its demo need.
CORE_PKGS := busybox-static libcap-dev libseccomp-dev build-essential pkg-config python3-venv python3-dev
# What the tests run against or beside ocirt.
TEST_PKGS := runc crun uidmap iproute2 procps docker.io containerd podman conmon python3-grpcio

.PHONY: demo test unit conformance install deps venv bench clean

demo: $(OCIRT) $(BUNDLE) $(DEMO)/config.json
	cd $(DEMO) && ../../$(OCIRT) run --bundle . ocirt-demo-$$$$

test: $(OCIRT) $(BUNDLE) build/.test-deps build/vm/stamp
	$(VENV)/bin/python -m pytest -q -rs -p no:cacheprovider tests/unit tests/conformance tests/engines tests/vm

unit: $(OCIRT) $(BUNDLE)
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/unit

conformance: $(OCIRT) $(BUNDLE) build/.test-deps
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/conformance

deps: build/.core-deps

build/.core-deps:
	@mkdir -p build
	sh tests/install-packages.sh $(CORE_PKGS)
	@touch $@

build/.test-deps: build/.core-deps
	sh tests/install-packages.sh $(TEST_PKGS)
	@touch $@

# The cgroup v2 guest: a Debian kernel and a busybox initramfs (tests/vm/README.md).
build/vm/stamp: tests/vm/setup.sh tests/vm/mkinitramfs.py tests/vm/init.sh tests/vm/stage2.sh
	sh tests/vm/setup.sh

venv: $(OCIRT)

$(OCIRT): build/.core-deps pyproject.toml setup.py ocirt/_shim/shim.c ocirt/_shim/build.py $(wildcard ocirt/_shim/front/*.c ocirt/_shim/front/*.h) ocirt/rules.py ocirt/status.py ocirt/_launcher.py
	test -x $(VENV)/bin/python && $(VENV)/bin/python -c 'import sys; sys.exit(sys.base_prefix != "/usr")' \
	  || { rm -rf $(VENV); $(PY) -m venv $(VENV); }
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]'
	$(VENV)/bin/python ocirt/_launcher.py $(OCIRT) $(CURDIR)

$(BUNDLE): $(OCIRT) $(shell find ocirt -name '*.py')
	$(VENV)/bin/python -c 'import sys; sys.path.insert(0, "."); from ocirt import _bundle; _bundle.build("ocirt", "$(BUNDLE)")'

# A busybox-static rootfs and a default config that prints something.
$(DEMO)/config.json: $(OCIRT) build/.core-deps
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(VENV)/bin/python tests/busybox_rootfs.py $(DEMO)/rootfs
	cd $(DEMO) && ../../$(OCIRT) spec && \
	  ../../$(VENV)/bin/python -c 'import json; c = json.load(open("config.json")); \
	    c["process"]["terminal"] = False; \
	    c["process"]["args"] = ["sh", "-c", "echo Hello from an ocirt container: hostname $$(hostname), pid $$$$, user $$(id -u); cat /proc/self/cgroup | head -3"]; \
	    json.dump(c, open("config.json", "w"), indent=2)'

# /usr/local/bin/ocirt: its own venv under /usr/local/lib/ocirt, not tied to this checkout.
install: build/.core-deps
	$(PY) -m venv /usr/local/lib/ocirt
	/usr/local/lib/ocirt/bin/pip install -q --disable-pip-version-check .
	cd / && /usr/local/lib/ocirt/bin/python -m ocirt._launcher /usr/local/bin/ocirt
	/usr/local/bin/ocirt --version

bench: $(OCIRT) $(BUNDLE) build/.test-deps
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf build $(VENV) ocirt/_shim/_lib*.so ocirt/_shim/_lib.c *.egg-info
