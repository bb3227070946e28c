# xsell: `make demo` runs the main job on a local Kafka; `make test` runs every test.
# `make setup` is idempotent: a second run with nothing changed only checks stamps.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_STAMP := $(VENV)/.xsell-installed
KAFKA_LIBS := .kafka/libs
KAFKA_STAMP := $(KAFKA_LIBS)/.xsell-fetched
ARGS ?=

.PHONY: setup promtool test test-fast lint demo clean

setup: $(PIP_STAMP) $(KAFKA_STAMP) promtool

$(PIP_STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "xsell needs Python 3.11+, found " + sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

$(KAFKA_STAMP): deploy/kafka/pom.xml
	@command -v mvn >/dev/null || { echo "error: Maven (mvn) not found: install Maven and Java 17+"; exit 2; }
	rm -rf $(KAFKA_LIBS)
	mvn --quiet --batch-mode -f deploy/kafka/pom.xml dependency:copy-dependencies
	@touch $@

# promtool (Debian's prometheus package) checks the Prometheus configuration and rules.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
promtool:
	@command -v promtool >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "error: promtool not found: install Prometheus's promtool"; exit 2; }; \
	  echo "installing promtool (Debian package prometheus)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

# Every test, integration and slow ones included, against a broker the session starts.
test: setup
	$(VENV)/bin/pytest

# A quicker local loop: skips the slow tests (CI never uses this target).
test-fast: setup
	$(VENV)/bin/pytest -m "not slow"

lint: setup
	$(VENV)/bin/ruff check stream encoders index tests
	$(VENV)/bin/mypy

demo: setup
	$(VENV)/bin/xsell demo $(ARGS)

clean:
	rm -rf $(VENV) .kafka .demo .pytest_cache .mypy_cache .ruff_cache
