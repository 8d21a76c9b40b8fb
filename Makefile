# Tranche: `make run` starts the product, `make test` runs lint and every test.
# Both install what they need (a virtualenv with the locked dependencies, via uv).

PYTHON ?= python3.11
PORT ?= 8000
VENV := .venv
UV_HOME := var/uv
UV := $(UV_HOME)/bin/uv
UV_VERSION := 0.13.9
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never
export PORT

CHROMIUM := /usr/bin/chromium
APT_PACKAGES := chromium fonts-dejavu-core

.PHONY: install system-deps run test lint format bench stop-db db messages clean

install: $(STAMP)

$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $(STAMP)

run: install
	$(PY) manage.py migrate --no-input
	$(PY) manage.py setup_schedules
	$(PY) manage.py demo_merchant --port $(PORT)
	$(PY) manage.py demo_terminal --port $(PORT)
	$(PY) manage.py demo_card --port $(PORT)
	$(VENV)/bin/honcho start -f Procfile -p $(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Debian's Chromium for the browser tests (Playwright's own browser download does not work here).
system-deps:
	@test -x $(CHROMIUM) || { \
	  echo "Installing $(APT_PACKAGES) with apt-get (browser tests)"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); }

test: lint system-deps
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest

bench: install
	$(PY) -m benchmarks

messages: install
	$(PY) manage.py makemessages -l fr --ignore=.venv --ignore=var
	$(PY) manage.py compilemessages --ignore=.venv --ignore=var

db: install
	$(PY) -m config.embedded_db start

stop-db: install
	$(PY) -m config.embedded_db stop

clean: stop-db
	rm -rf $(VENV) var
