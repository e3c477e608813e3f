# modelctl developer commands. Every target sets up what it needs itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install proto proto-check dashboards docs system-deps lint test demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Regenerate client/v1 (modelctl.v1) and docs/api.md from proto/; proto-check fails when either is stale.
proto: $(STAMP)
	$(PY) scripts/gen_protos.py

proto-check: $(STAMP)
	$(PY) scripts/gen_protos.py --check

## Regenerate grafana/dashboards/*.json from scripts/gen_dashboards.py (commit the JSON).
dashboards: $(STAMP)
	$(PY) scripts/gen_dashboards.py

## Regenerate the generated sections of docs/configuration.md and docs/architecture.md (scripts/gen_docs.py).
docs: $(STAMP)
	$(PY) scripts/gen_docs.py

## Debian packages the integration tests use: Prometheus (+promtool) for the scrape and rule tests,
## docker-compose v1 to validate docker-compose.yml offline.
SYSTEM_DEPS := prometheus docker-compose
system-deps:
	@bash scripts/install_system_deps.sh $(SYSTEM_DEPS)

lint: $(STAMP)
	$(VENV)/bin/ruff check server client tests bench scripts

test: $(STAMP) system-deps proto-check lint
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

## The whole story on SQLite with a simulated fleet (scripts/demo.py); ARGS=--keep-running to explore after.
demo: $(STAMP)
	$(PY) scripts/demo.py $(ARGS)

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
