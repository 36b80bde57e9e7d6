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

# Secrets (the deploys' secret_env, the DR checks' database URLs) come from the environment only. `make demo`
# makes up the ones you have not exported (OPSRUN_DEMO_API_TOKEN, OPSRUN_REDIS_PASSWORD, OPSRUN_MONGO_KEYFILE,
# OPSRUN_PG_PRIMARY_URL, OPSRUN_PG_REPLICA_URL) and keeps them in .opsrun/demo.env (mode 600), so that a
# second run changes nothing: see opsrun.lab.demo.demo_env.

.PHONY: deps venv demo readme-tour test lint unit lab-down clean

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

# The three jobs on the lab, as README.md's tour shows them: one list of commands, src/opsrun/lab/demo.py.
# `make readme-tour` runs the same and writes each command's real output into the README.
demo: deps venv
	$(BIN)/python -m opsrun.lab.demo

readme-tour: deps venv
	$(BIN)/python -m opsrun.lab.demo --readme

lint: venv
	$(BIN)/ruff check src tests deploys verify inventories group_data bench
	$(BIN)/ruff format --check src tests deploys verify inventories group_data bench
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit

test: deps venv lint
	$(BIN)/pytest tests --durations=25

lab-down: venv
	$(BIN)/opsrun lab down

clean: lab-down
	rm -rf $(VENV) .opsrun
