# traceability: `make run` serves the app, `make test` runs the suite. Both set everything up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml setup.py traceability/_chainwalk.c traceability/_canonical.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

.PHONY: install
install: $(STAMP) ## create the virtualenv and install the project with its test tools

# Debian packages the tests need: a CJK font for labels and receipts, pdftoppm to read PDFs back.
SYSTEM_PACKAGES := fonts-wqy-microhei poppler-utils

.PHONY: system-deps
system-deps: ## install the Debian packages the tests use (fonts, pdftoppm), if missing
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

.PHONY: run
run: install ## set up (embedded PostgreSQL unless TRACE_DATABASE_URL), migrate, serve on :8080
	$(BIN)/traceability serve --migrate

DEMO_ARGS ?=
.PHONY: demo
demo: install ## load the demo city (Xuzhou) into the configured database; DEMO_ARGS="--events 1000000 --seed 2"
	$(BIN)/traceability migrate
	$(BIN)/traceability demo $(DEMO_ARGS)

# The suite mostly waits (servers and their PostgreSQL starting, background work settling, Chromium), so several
# pytest processes share the machine's cores well; worksteal keeps them busy to the end. TEST_WORKERS=0 runs it in one.
TEST_WORKERS ?= 3
.PHONY: test
test: install system-deps browser ## run the whole test suite against a real PostgreSQL
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

.PHONY: bench
bench: install browser ## measure the hot paths against same-run baselines; writes bench/results.json
	$(BIN)/python -m bench

.PHONY: lint
lint: install ## ruff, ruff format --check, mypy strict, import contracts and the structure checks
	$(BIN)/ruff check traceability scanners tests bench
	$(BIN)/ruff format --check traceability scanners tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo
	$(BIN)/pytest -q -p no:cacheprovider tests/test_structure.py

.PHONY: verify
verify: install ## recompute every hash chain in the configured database
	$(BIN)/traceability verify

.PHONY: clean
clean: ## remove the virtualenv and local data (var/)
	rm -rf $(VENV) var

.PHONY: browser
browser: ## install Debian's chromium for the browser tests and screenshots, if missing
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	}

.PHONY: receipt-images
receipt-images: install system-deps ## pictures of printed receipts and labels, from their ESC/POS and TSPL bytes, into docs/images/
	$(BIN)/python -m tests.scanners.receipt_images

.PHONY: screenshots
screenshots: install system-deps browser ## phone, desktop and kiosk screenshots of the pages into docs/screenshots/
	$(BIN)/python -m tests.web.screenshots
	TRACE_SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest -q -p no:cacheprovider tests/web/test_kiosk.py
