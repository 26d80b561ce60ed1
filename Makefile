# CheckOS: `make run` (local stack on moto) and `make test` (everything).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every wheel the Lambda bundle needs, downloaded (and host-built where chalice would
# build it) once per requirements.txt: the packaging test runs without a network.
WHEELHOUSE := build/wheelhouse/.complete
PORT ?= 8000
DEMO ?= 0
# DDB_REALISM=1: transaction conflicts, lagging indexes and throttles (infra/ddb_realism.py)
DDB_REALISM ?= 0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint pytest infra-check chromium checkers spamassassin package clean security load check-data screenshots mutation

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $(STAMP)

$(WHEELHOUSE): requirements.txt | $(STAMP)
	$(BIN)/python -m infra.wheelhouse build/wheelhouse

## Local stack: moto server + tables/bucket/identity from infra/ + the app on :$(PORT).
run: $(STAMP)
	DDB_REALISM=$(DDB_REALISM) $(BIN)/python -m infra.local --port $(PORT) $(if $(filter 1 yes true,$(DEMO)),--demo,)

## Everything CI checks.
test: $(STAMP) chromium checkers spamassassin checkov lint pytest

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# Page checkers of the browser suite: axe-core and the Nu HTML checker (vnu.jar, from its
# npm packaging, pinned in tests/e2e/tools/package-lock.json), and Java to run it.
CHECKERS := $(VENV)/checkers
$(CHECKERS)/.installed: tests/e2e/tools/package.json tests/e2e/tools/package-lock.json
	@command -v java >/dev/null 2>&1 || { \
	  echo "Installing Debian's Java runtime for the HTML checker"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq default-jre-headless; }
	@command -v npm >/dev/null 2>&1 || { \
	  echo "Installing Debian's npm for the page checkers"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq npm; }
	mkdir -p $(CHECKERS)
	cp tests/e2e/tools/package.json tests/e2e/tools/package-lock.json $(CHECKERS)/
	cd $(CHECKERS) && npm ci --no-audit --no-fund --silent
	touch $@

checkers: $(STAMP) $(CHECKERS)/.installed

# The mail suite scores every e-mail with Debian's SpamAssassin (local rules only).
spamassassin:
	@command -v spamd >/dev/null 2>&1 && command -v spamc >/dev/null 2>&1 || { \
	  echo "Installing Debian's spamassassin for the mail tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq spamassassin spamc; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m infra.lint_imports

# Two workers (one per core), whole files per worker: each has its own moto
# state, and browser tests their own `make run`. The security suites run at
# full strength (CHECKOS_THOROUGH=1: every XSS payload, 12 fuzz bodies per
# route, the whole fault matrix); README "Tests" has what that costs.
pytest: $(STAMP) $(WHEELHOUSE)
	CHECKOS_THOROUGH=1 $(BIN)/python -m pytest -n 2 --dist loadfile
	CHECKOS_SUITE=concurrency $(BIN)/python -m pytest tests/concurrency
	CHECKOS_SUITE=perf $(BIN)/python -m pytest -n 2 --dist loadfile tests/perf
	CHECKOS_SUITE=load LOAD_CLIENTS=8 LOAD_OPERATIONS=15 LOAD_RACES=2 STAFF_ROUNDS=1 $(BIN)/python -m pytest tests/load

## Cost figures against their floors (cold start, requests per page, export, jobs; capacity
## units, round trips, server time and the month in dollars: issue 24); last line JSON.
.PHONY: bench
bench: $(STAMP)
	$(BIN)/python -m tests.perf.bench

## A standard free-plan company's month in US dollars by service (issue 24), from measured
## capacity units, server times, e-mails and S3 at tests/perf/aws_prices.json's list prices.
.PHONY: cost
cost: $(STAMP)
	$(BIN)/python -m tests.perf.bench_cost

## Security suites alone at full strength (every payload, more fuzz examples), as `make test` runs them.
security: $(STAMP)
	CHECKOS_THOROUGH=1 $(BIN)/python -m pytest -n 2 --dist loadfile tests/security

## Mutation testing of the checks that guard tenants and secrets (infra/mutation.toml):
## mutmut in a temporary copy of the checkout, MUTATION_CHILDREN workers (1); killed/survived/equivalent per module.
## ONLY="customers partners" runs some modules (names in infra/mutation.toml).
MUTATION_CHILDREN ?= 1
mutation: $(STAMP)
	time $(BIN)/python -m infra.mutation $(if $(ONLY),--only $(ONLY),) --children $(MUTATION_CHILDREN)

## Load test against the local stack on a loopback moto server, then the invariant checker.
load: $(STAMP)
	CHECKOS_SUITE=load $(BIN)/python -m pytest tests/load

## Invariant checker over the table of a running `make run` (see chalicelib/services/integrity/).
check-data: $(STAMP)
	$(BIN)/python -m infra.check_data --port $(PORT)

## Help-center screenshots, taken from the running app by the browser suite.
screenshots: $(STAMP) chromium
	$(BIN)/python -m pytest tests/e2e/test_help.py -k screenshots

## Lambda bundle + CloudFormation (SAM) template of STAGE (default prod) in build/package.
# The help center's screenshots are taken first: the bundle carries them (chalicelib/static/help).
STAGE ?= prod
package: $(STAMP) screenshots
	$(BIN)/python -m infra.package build/package --stage $(STAGE)
	$(BIN)/python -m infra.bundle_check build/package/deployment.zip

## Package STAGE, upload it and deploy its stack (infra/deploy/$(STAGE).json; README "Deploy").
## DRY_RUN=1 prints the AWS CLI commands without running them.
.PHONY: deploy
deploy: package
	$(BIN)/python -m infra.deploy $(STAGE) $(if $(filter 1 yes true,$(DRY_RUN)),--dry-run,)

# checkov in a virtualenv of its own: it pins an older boto3 than the app's.
CHECKOV := $(VENV)/checkov/bin/checkov
$(CHECKOV): requirements-checkov.txt
	test -x $(VENV)/checkov/bin/python || $(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --disable-pip-version-check -q -r requirements-checkov.txt
	touch $@

.PHONY: checkov
checkov: $(CHECKOV)

clean:
	rm -rf build .pytest_cache .ruff_cache
