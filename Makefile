# flbsql - `make help` lists the targets.
PY      ?= python3
VENV    ?= .venv
VPY     := $(VENV)/bin/python
BUILD   := $(CURDIR)/build
PYTEST  ?= $(VPY) -m pytest

.DEFAULT_GOAL := help

help: ## list targets
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.stamp: pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[all,test,dev]'
	touch $@

OIDC_NODE := tests/oidc/node_modules/.package-lock.json
$(OIDC_NODE): tests/oidc/package.json tests/oidc/package-lock.json
	cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error

dev: $(VENV)/.stamp $(OIDC_NODE) ## create .venv with every driver, test and dev tool (and the tests' OIDC provider)

shim: dev ## build in_sql.so and out_sql.so into src/flbsql/lib; byte-compile the package
	$(VPY) csrc/build_shim.py
	$(VPY) -m compileall -q src/flbsql >/dev/null  # as pip install does: every start imports it

host: ## build the C test host (build/flbhost) that loads plugins like Fluent Bit
	$(MAKE) -s -C tests/host BUILD=$(BUILD)

build: shim host ## shim + host

demo: build ## the main job: a demo pipeline on SQLite (fluent-bit if on PATH, else the test host)
	$(VPY) -m flbsql demo

test: build ## the whole test suite against the local databases (CI runs this)
	$(PYTEST)

test-unit: build ## tests that need no database server
	$(PYTEST) tests/unit

test-sqlite: build ## behaviour tests on SQLite
	$(PYTEST) -m sqlite

test-postgres: build ## behaviour tests on PostgreSQL
	$(PYTEST) -m postgres

test-mysql: build ## behaviour tests on MySQL/MariaDB
	$(PYTEST) -m mysql

test-oracle: build ## Oracle tests (needs FLBSQL_TEST_ORACLE_URL, e.g. from docker/compose.yml)
	$(PYTEST) -m oracle

test-mssql: build ## SQL Server tests (needs FLBSQL_TEST_MSSQL_URL)
	$(PYTEST) -m mssql

test-chaos: build ## crash, outage and poison suite
	$(PYTEST) -m chaos

test-fluent-bit: build ## the hard tests in a real Fluent Bit (needs FLBSQL_FLUENT_BIT=/path/to/fluent-bit)
	@if [ -z "$(FLBSQL_FLUENT_BIT)" ]; then \
	  echo "make test-fluent-bit: set FLBSQL_FLUENT_BIT=/path/to/fluent-bit (a Fluent Bit binary)" >&2; exit 2; fi
	@if [ ! -x "$(FLBSQL_FLUENT_BIT)" ]; then \
	  echo "make test-fluent-bit: FLBSQL_FLUENT_BIT=$(FLBSQL_FLUENT_BIT) is not an executable file" >&2; exit 2; fi
	FLBSQL_FLUENT_BIT="$(FLBSQL_FLUENT_BIT)" $(PYTEST) -m fluentbit -s tests/fluentbit

sanitize: dev ## shim, host and the C speed-ups under ASan/UBSan, then their tests
	FLBSQL_SANITIZE=1 $(VPY) csrc/build_shim.py $(BUILD)/san
	$(MAKE) -s -C tests/host BUILD=$(BUILD)/san SAN=1
	FLBSQL_SAN_BUILD=$(BUILD)/san PYTHONMALLOC=malloc \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/host/lsan.supp:print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PYTEST) -p no:cacheprovider tests/shim -m "not slow"
	rm -rf $(BUILD)/san/py && mkdir -p $(BUILD)/san/py && cp -r src/flbsql $(BUILD)/san/py/
	rm -f $(BUILD)/san/py/flbsql/*/c*.so
	FLBSQL_SANITIZE=1 $(VPY) csrc/build_shim.py --extensions $(BUILD)/san/py/flbsql
	PYTHONPATH=$(BUILD)/san/py PYTHONMALLOC=malloc FLBSQL_EXAMPLES_SCALE=0.25 \
	  LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PYTEST) -p no:cacheprovider tests/unit/events/test_frame.py \
	  tests/unit/cdc/test_packtuple.py tests/unit/cdc/test_stream_inserts.py \
	  tests/unit/dialects/test_pgcopy.py

bench-output: build ## output benchmark: PostgreSQL (vs psql \copy), MariaDB, SQLite
	$(VPY) -m bench output

bench-input: build ## input benchmark: PostgreSQL table to a null sink (vs COPY TO STDOUT)
	$(VPY) -m bench input

bench-cdc: build ## CDC benchmark: changes/s and latency
	$(VPY) -m bench cdc

bench-replicate: build ## replication benchmark: CDC applied to a PostgreSQL replica vs appended
	$(VPY) -m bench replicate

bench: build ## every benchmark; writes docs/benchmarks.md and .json
	$(VPY) -m bench all

lint: dev ## ruff check + ruff format --check + the layering contract (import-linter)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports

typecheck: dev ## mypy strict
	$(VENV)/bin/mypy

docs: dev ## regenerate the typed config classes and docs/configuration.md, type-mapping.md, api.md
	$(VPY) -m flbsql.tools.codegen > src/flbsql/options/config.py
	$(VPY) -m flbsql.tools.docgen > docs/configuration.md
	$(VPY) -m flbsql.tools.docgen type-mapping > docs/type-mapping.md
	$(VPY) -m flbsql.tools.docgen api > docs/api.md

e2e: ## Fluent Bit + PostgreSQL + MariaDB from docker/compose.yml, smoke pipeline (needs Docker)
	docker/e2e.sh

clean: ## remove build outputs
	rm -rf build src/flbsql/lib

.PHONY: help dev shim host build demo test test-unit test-sqlite test-postgres test-mysql \
	test-oracle test-mssql test-chaos test-fluent-bit sanitize bench-output bench-input bench-cdc bench-replicate bench lint \
	typecheck docs e2e clean
