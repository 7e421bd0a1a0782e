# tinker-rest: every command a developer or CI needs. `make demo` and `make test` set up
# everything themselves on a fresh clone (Python 3.11, git, make and node/npm).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
NODE_INSTALLED := node_modules/.installed

.PHONY: help install demo serve test pytest lint lint-py lint-spec lint-ts generate check-generated bench clean

help:
	@echo "make demo             start a local server with demo data and run the tour"
	@echo "make test             lint, drift check and the whole test suite"
	@echo "make generate         regenerate generated/ from spec/tinker-rest.yaml"
	@echo "make check-generated  fail if generated/ differs from what the spec makes"
	@echo "make lint             ruff, mypy --strict, the spec lint and tsc --strict"
	@echo "make serve            run the reference server on 127.0.0.1:8000 with demo data"
	@echo "make bench            run the benchmarks"

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "tinker-rest needs Python 3.11+"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(NODE_INSTALLED): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(INSTALLED) $(NODE_INSTALLED)

demo: install
	$(PY) scripts/demo.py

serve: install
	$(VENV)/bin/tinker-rest serve --demo --db demo-data/tinker.db

generate: install
	$(PY) scripts/generate.py

check-generated: install
	$(PY) scripts/generate.py --check

lint-py: $(INSTALLED)
	$(VENV)/bin/ruff check tinker_rest tests scripts
	$(VENV)/bin/ruff format --check tinker_rest tests scripts
	$(VENV)/bin/mypy

lint-spec: $(INSTALLED) $(NODE_INSTALLED)
	npx --no-install redocly lint --format=stylish spec/tinker-rest.yaml
	$(VENV)/bin/openapi-spec-validator spec/tinker-rest.yaml

lint-ts: $(NODE_INSTALLED)
	npx --no-install tsc -p ts --noEmit

lint: lint-py lint-spec lint-ts

pytest: install
	$(VENV)/bin/pytest

test: lint check-generated pytest

bench: install
	$(PY) scripts/bench.py

clean:
	rm -rf $(VENV) node_modules ts/build .pytest_cache .mypy_cache .ruff_cache .hypothesis
