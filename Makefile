# The two commands of the README: `make run` and `make test`. Everything else is theirs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test install install-dev lock ops-tools browser-tools secrets unit integration e2e browser check lint bench bench-short bench-tools chaos chaos-short clean-var

# Two locks made by pip-tools from pyproject.toml, every file checked by its hash:
# requirements.lock is the runtime set (what `make run` and deploy/Dockerfile install),
# requirements-dev.lock adds the test and lint tools (what `make test` installs).
$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip<26" "setuptools<81" wheel
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.lock
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock -r requirements-dev.lock
	touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

# Both locks again from pyproject.toml's pins (after changing them); pins already in a
# lock are kept unless pyproject.toml asks otherwise. pip-tools runs from a venv of its own.
PIP_COMPILE := $(VENV)-tools/bin/pip-compile
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock:
	test -x $(PIP_COMPILE) || { $(PYTHON) -m venv $(VENV)-tools && $(VENV)-tools/bin/pip install --quiet "pip<26" pip-tools==7.6.2; }
	$(PIP_COMPILE) $(LOCK_FLAGS) -o requirements.lock pyproject.toml
	$(PIP_COMPILE) $(LOCK_FLAGS) --extra dev --constraint requirements.lock -o requirements-dev.lock pyproject.toml

# prometheus, promtool and docker-compose (Debian packages) for the tests of deploy/
ops-tools:
	@bash deploy/prometheus/install-tools.sh

# Debian's Chromium for the console's browser tests
browser-tools:
	@bash deploy/browser/install-chromium.sh

secrets: install
	@$(BIN)/bersinar secrets init

# Everything under supervisord in the foreground (deploy/supervisord.conf): the embedded
# PostgreSQL (unless every <SERVICE>_DATABASE_URL is set), then `bersinar setup`
# (databases, migrations, queues, seed, first admin), the services, relays and gateway.
run: install
	$(BIN)/bersinar run

# The browser tests run in a pytest process of their own: Playwright's sync API cannot
# run under the eventlet monkey-patching every other test needs (tests/conftest.py).
test: install-dev ops-tools browser-tools
	$(BIN)/pytest tests/unit tests/integration tests/e2e
	BERSINAR_TEST_BROWSER=1 $(BIN)/pytest tests/browser

unit: install-dev ops-tools
	$(BIN)/pytest tests/unit

integration: install-dev
	$(BIN)/pytest tests/integration

e2e: install-dev ops-tools
	$(BIN)/pytest tests/e2e

lint: install-dev
	$(BIN)/ruff check bersinar services gateway cli harness tests bench chaos

browser: install-dev browser-tools
	BERSINAR_TEST_BROWSER=1 $(BIN)/pytest tests/browser

check: lint unit

bench: install-dev bench-tools
	$(BIN)/python -m bench

# the fault suite (docs/chaos.md): `bersinar run` with the embedded PostgreSQL on a folder
# of its own, against a RabbitMQ node of its own (never the shared one); needs root or the
# rabbitmq user's rights
chaos: install-dev
	$(BIN)/python -m chaos --write-docs

chaos-short: install-dev
	$(BIN)/python -m chaos --short

# every phase with small counts, docs untouched: what CI runs so the harness cannot rot
# (it prints verdicts; it fails only when the harness itself breaks)
bench-short: install-dev bench-tools
	$(BIN)/python -m bench --short --no-docs

# wrk (Debian package) for the benchmark's plain HTTP phases
bench-tools:
	bench/install-tools.sh

clean-var:
	rm -rf var
