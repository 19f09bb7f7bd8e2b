# `make run` and `make test` set everything up on a fresh machine, then run.
# `portal serve` believes X-Forwarded-For only from the proxies FORWARDED_ALLOW_IPS names.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
DATABASE_URL ?= sqlite:///var/portal.sqlite
export DATABASE_URL

VENDOR := frontend/static/vendor
VENDOR_FILES := $(VENDOR)/htmx.min.js $(VENDOR)/pico.min.css
PO_FILES := $(wildcard frontend/translations/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)

.PHONY: run test bench setup fonts test-setup bench-setup lint messages clean

run: setup
	$(BIN)/portal migrate
	PORTAL_DEMO=$${PORTAL_DEMO:-1} $(BIN)/portal serve --host $(HOST) --port $(PORT)

test: setup test-setup
	$(BIN)/ruff check backend tests
	$(BIN)/pytest

setup: $(VENV)/.installed $(VENDOR_FILES) $(MO_FILES) fonts

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENDOR)/htmx.min.js: frontend/node_modules/.installed
	mkdir -p $(VENDOR)
	cp frontend/node_modules/htmx.org/dist/htmx.min.js $@

$(VENDOR)/pico.min.css: frontend/node_modules/.installed
	mkdir -p $(VENDOR)
	cp frontend/node_modules/@picocss/pico/css/pico.min.css $@

%.mo: %.po $(VENV)/.installed
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@

# The performance table (README, "Performance"): figures only, no assertions.
bench: setup bench-setup
	$(BIN)/python -m tests.bench_pages

bench-setup:
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# The receipt PDF's font (backend/web/receipt_pdf.py): Debian's DejaVu, for any letter a name has.
fonts:
	@test -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null; }

# Debian's Chromium drives the browser tests (never a browser download).
test-setup:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Re-extract the texts after changing templates or messages, then translate the .po files.
messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F frontend/babel.cfg -k N_ -o frontend/translations/messages.pot .
	$(BIN)/pybabel update -i frontend/translations/messages.pot -d frontend/translations --no-fuzzy-matching

lint: setup
	$(BIN)/ruff check backend tests
	$(BIN)/ruff format --check backend tests

clean:
	rm -rf $(VENV) frontend/node_modules $(VENDOR) $(MO_FILES)
