# Everything a fresh Debian 12 machine (as root) needs: `make demo` runs opsrun on the local lab,
# `make test` runs the whole test suite. Both install what they need first.

VENV      ?= .venv
PYTHON    ?= python3
BIN       := $(VENV)/bin
# The lab: systemd-nspawn hosts, network namespaces, SSH, HAProxy in front. postgresql: the DR report's primary
# and replica (and, in the tests, the PostgreSQL state store); git records the ops revision.
DEB_PKGS  := debootstrap systemd-container iproute2 openssh-client util-linux procps curl ca-certificates haproxy \
             postgresql git
# Only the tests: chromium (headless) opens the HTML reports (the largest download of all: not for `make demo`);
# redis-tools has redis-server's binary (redis-check-rdb) for tests/redis/, without a service that starts;
# openssh-server's sshd and sudo: tests/ssh/ starts its own sshd processes on loopback (the machine's ssh service,
# if the package starts one, is not used).
TEST_PKGS := chromium fonts-dejavu-core redis-tools openssh-server sudo

# Secrets (the deploys' secret_env, the DR checks' database URLs) come from the environment (or AWS). `make demo`
# makes up the ones you have not exported (OPSRUN_DEMO_API_TOKEN, OPSRUN_REDIS_PASSWORD, OPSRUN_MONGO_KEYFILE,
# OPSRUN_PG_PRIMARY_URL, OPSRUN_PG_REPLICA_URL) and keeps them in .opsrun/demo.env (mode 600), so that a
# second run changes nothing: see opsrun.lab.demo.demo_env.

.PHONY: deps test-deps venv dev docs reference demo tour test test-alone lint unit lab-down clean

# One `apt-get update` and one install of whatever is missing (npm: the lab's npm mirror asks this machine's npm
# which registry to mirror).
deps:
	@pkgs="$$(dpkg -s $(DEB_PKGS) >/dev/null 2>&1 || echo $(DEB_PKGS)) \
	  $$(command -v npm >/dev/null 2>&1 || echo npm) \
	  $$($(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || echo python3-venv)"; \
	if [ -n "$$(echo $$pkgs)" ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$pkgs; fi

test-deps: deps
	@dpkg -s $(TEST_PKGS) >/dev/null 2>&1 || { \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(TEST_PKGS); }

# opsrun and what it needs to run (`make demo`); `dev` adds the test and lint tools (pyproject's dev extra).
$(BIN)/opsrun: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.dev: $(BIN)/opsrun
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

$(VENV)/.docs: $(BIN)/opsrun
	$(BIN)/pip install -q -e '.[docs]'
	@touch $@

venv: $(BIN)/opsrun

dev: $(VENV)/.dev

# The docs site (mkdocs.yml, docs/) built into site/ in strict mode: a broken link or anchor, a page missing from
# the nav or an include that is not there fails it. NO_MKDOCS_2_WARNING keeps mkdocs-material's banner about its
# end of life out of the build's output. `make reference` writes the generated pages (the CLI and the settings).
docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

reference: venv
	$(BIN)/python -m opsrun.docgen

# The three jobs on the lab, as docs/tour.md shows them: one list of commands, src/opsrun/lab/demo.py.
# `make tour` runs the same and writes each command's real output into docs/tour.md.
demo: deps venv
	$(BIN)/python -m opsrun.lab.demo

tour: deps venv
	$(BIN)/python -m opsrun.lab.demo --tour

lint: dev
	$(BIN)/ruff check src tests deploys verify inventories group_data bench
	$(BIN)/ruff format --check src tests deploys verify inventories group_data bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: dev
	$(BIN)/pytest tests/unit

# The docs site first (seconds), then the tests in a shuffled order (modules, and tests within each): the seed
# is printed first and last; replay an order with `make test PYTEST_ARGS='--seed N'`.
test: test-deps dev lint docs
	$(BIN)/pytest tests --order shuffle --durations=40 $(PYTEST_ARGS)

# Each test in a pytest process of its own, on one lab kept up between them (default: every lab test):
# `make test-alone TESTS='tests/lab/test_pm2.py -k secret'`.
test-alone: test-deps dev
	$(BIN)/python tests/alone.py $(TESTS)

lab-down: venv
	$(BIN)/opsrun lab down

clean: lab-down
	rm -rf $(VENV) .opsrun
