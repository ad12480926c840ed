# medmij-dvza — every set-up step lives here, so a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SHARED ?= $(abspath ../shared)
export DVZA_SHARED_DIR ?= $(SHARED)

.PHONY: venv run test test-postgres lint bench conformance clean

# pip shows what it collects and installs (no progress bars, which only clutter CI logs): the first install
# takes a few minutes and must not look like a hang.
$(STAMP): setup.cfg pyproject.toml
	@echo "== creating $(VENV) and installing medmij-dvza with its test dependencies (a few minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --progress-bar off --upgrade pip
	$(BIN)/pip install --progress-bar off -e '.[test]'
	touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

test: $(STAMP)
	bash .ci/browser.sh
	bash .ci/login-idps.sh
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -q
	@if [ -n "$$DVZA_TEST_POSTGRES_URL" ]; then $(MAKE) --no-print-directory test-postgres; \
	else echo "note: DVZA_TEST_POSTGRES_URL not set, PostgreSQL pass skipped (.ci/run starts one)"; fi

# The PostgreSQL pass runs on copies of a database the release in .ci/upgrade-from created with its own code,
# upgraded by our migrations (tests/released.py): a database made by main upgrades cleanly and then passes.
test-postgres: $(STAMP)
	@set -e; status=0; template=$$($(BIN)/python -m tests.released --on-server "$$DVZA_TEST_POSTGRES_URL") || status=$$?; \
	if [ $$status -eq 0 ]; then echo "== PostgreSQL pass on upgraded copies of $$template"; \
	elif [ $$status -eq 3 ]; then template=; echo "note: release commit not in this clone: PostgreSQL pass on new databases"; \
	else exit $$status; fi; \
	DVZA_TEST_DATABASE_URL="$$DVZA_TEST_POSTGRES_URL" DVZA_TEST_TEMPLATE_URL="$$template" \
		$(BIN)/pytest -q -m "not browser and not e2e" tests

# `make run`: the whole development network (dvza/devtools/devnet.py) in var/: DVZA frontchannel and backchannel
# (HTTPS, client certificates) with the Nictiz Cert test patients on SQLite, demo MedMij lists, a
# development PKI and the PGO simulator. It prints the URL to open.
run: export DVZA_INSTANCE_PATH ?= $(CURDIR)/var
run: export DVZA_QUALIFICATION_MODE ?= true
run: export DVZA_DEVELOPMENT_LOGIN ?= true
run: export DVZA_LOG_FORMAT ?= console
run: $(STAMP)
	$(BIN)/dvza demo run

# `make conformance`: our server with the Cert data, then the Nictiz Cert TestScripts (BgZ, PDF/A, Vragenlijsten,
# Zelfmetingen; JSON and XML) through the conformance runner. JUNIT=file.xml writes a JUnit report.
conformance: $(STAMP)
	$(BIN)/python -m dvza.conformance.selfhost $(if $(JUNIT),--junit $(JUNIT))

bench: $(STAMP)
	$(BIN)/python -m dvza.devtools.bench

clean:
	rm -rf $(VENV) var build *.egg-info
