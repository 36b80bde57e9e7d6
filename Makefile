# Everything a fresh Debian 12 machine (as root) needs: `make demo` runs opsrun on the local lab,
# `make test` runs the whole test suite. Both install what they need first.

VENV      ?= .venv
PYTHON    ?= python3
BIN       := $(VENV)/bin
# The lab: systemd-nspawn hosts, network namespaces, SSH, HAProxy in front. curl is used by the lab tests;
# postgresql gives the tests a real server for the PostgreSQL state store; git records the ops revision;
# chromium (headless) opens the HTML reports in the tests.
DEB_PKGS  := debootstrap systemd-container iproute2 openssh-client util-linux procps curl ca-certificates haproxy \
             postgresql git chromium fonts-dejavu-core

# The demo app's secret (group_data/web.py, pm2_apps secret_env): opsrun reads it from the environment only.
ifndef OPSRUN_DEMO_API_TOKEN
OPSRUN_DEMO_API_TOKEN := demo-$(shell od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
endif
export OPSRUN_DEMO_API_TOKEN

.PHONY: deps venv demo test lint unit lab-down clean

deps:
	@dpkg -s $(DEB_PKGS) >/dev/null 2>&1 || { \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEB_PKGS); }
	@# the lab's npm mirror asks this machine's npm which registry to mirror
	@command -v npm >/dev/null 2>&1 || { \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; }

$(BIN)/opsrun: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/opsrun

demo: deps venv
	$(BIN)/opsrun lab up --hosts 3
	$(BIN)/opsrun apply lab pm2
	$(BIN)/opsrun apply lab nginx
	$(BIN)/opsrun verify lab pm2
	$(BIN)/opsrun verify lab nginx
	@echo
	@echo "Results (JSON, one per run): $(CURDIR)/.opsrun/results/"
	@ls -1 .opsrun/results/*-latest.json
	@echo "The lab stays up for you to explore: $(BIN)/opsrun lab status; remove it with: $(BIN)/opsrun lab down"

lint: venv
	$(BIN)/ruff check src tests deploys verify inventories group_data bench
	$(BIN)/ruff format --check src tests deploys verify inventories group_data bench
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit

test: deps venv lint
	$(BIN)/pytest tests

lab-down: venv
	$(BIN)/opsrun lab down

clean: lab-down
	rm -rf $(VENV) .opsrun
