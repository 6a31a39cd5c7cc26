# Hulei (护蕾). `make run` and `make test` are the two commands; see README.md.
SHELL := /bin/bash
UV := UV_PYTHON_DOWNLOADS=never uv
export SPATIALITE_LIBRARY_PATH ?= mod_spatialite

.PHONY: run bootstrap migrate seed serve worker test test-spatialite test-postgis lint spec clean load faults bench

run: bootstrap migrate seed serve

bootstrap:
	@./scripts/bootstrap

migrate:
	$(UV) run hulei migrate

seed:
	$(UV) run hulei seed-demo

serve:
	$(UV) run hulei serve --host 127.0.0.1 --port 8000

worker:
	$(UV) run hulei worker

test: bootstrap lint test-spatialite test-postgis

lint:
	$(UV) run ruff check backend tests scripts
	$(UV) run mypy backend

# Compiled modules are kept under var/pycache even where PYTHONDONTWRITEBYTECODE is set (as in many
# container images): otherwise every test process and every server the suite starts compiles every
# module, our own and the libraries', again (about 10 s of each worker's start alone).
test-spatialite test-postgis: export PYTHONDONTWRITEBYTECODE :=
test-spatialite test-postgis: export PYTHONPYCACHEPREFIX := $(CURDIR)/var/pycache

test-spatialite:
	$(UV) run pytest -q -p no:cacheprovider -n 2 --backend=spatialite

test-postgis:
	$(UV) run pytest -q -p no:cacheprovider -n 2 --backend=postgis

# Operations scripts (issue 8): each prints a table; see README.md "Load, faults and benchmarks".
load: bootstrap
	$(UV) run python scripts/load.py

faults: bootstrap
	$(UV) run python scripts/faults.py

bench: bootstrap
	$(UV) run python scripts/bench.py

spec:
	$(UV) run hulei export-spec --output mobile_api_spec/openapi.json

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
