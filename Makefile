# The two commands of the README: `make run` and `make test`. Everything else is theirs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install ops-tools browser-tools secrets unit integration e2e browser check lint bench bench-short chaos chaos-short clean-var

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip<26" "setuptools<81" wheel
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# prometheus and promtool (Debian package) for the tests of deploy/
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
test: install ops-tools browser-tools
	$(BIN)/pytest tests/unit tests/integration tests/e2e
	BERSINAR_TEST_BROWSER=1 $(BIN)/pytest tests/browser

unit: install ops-tools
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

e2e: install ops-tools
	$(BIN)/pytest tests/e2e

lint: install
	$(BIN)/ruff check bersinar services gateway cli harness tests bench chaos

browser: install browser-tools
	BERSINAR_TEST_BROWSER=1 $(BIN)/pytest tests/browser

check: lint unit

bench: install
	$(BIN)/python -m bench

# the fault suite (docs/chaos.md): `bersinar run` with the embedded PostgreSQL on a folder
# of its own, against a RabbitMQ node of its own (never the shared one); needs root or the
# rabbitmq user's rights
chaos: install
	$(BIN)/python -m chaos --write-docs

chaos-short: install
	$(BIN)/python -m chaos --short

# every phase with small counts, docs untouched: what CI runs so the harness cannot rot
# (it prints verdicts; it fails only when the harness itself breaks)
bench-short: install
	$(BIN)/python -m bench --short --no-docs

clean-var:
	rm -rf var
