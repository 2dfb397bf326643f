# A fresh clone needs only `make demo` and `make test`: each creates .venv and installs the project first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ADQ := $(VENV)/bin/adq
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint docs services browser bench results calibrate-tiny clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip check
	touch $(STAMP)

demo: install
	$(ADQ) demo

services:
	./scripts/services.sh

browser:
	./scripts/browser.sh

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The documentation site, into .adq/site; --strict fails on a broken link or a page outside the navigation.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

test: install lint docs services browser
	$(PY) -m pytest -q --durations=15

test-fast: install
	$(PY) -m pytest -q tests/unit

bench: install services
	./scripts/bench.sh

# Regenerates the committed results under data/results/ and records each file's command and commit in
# data/results/MANIFEST.json (all of them: about 70 minutes on 2 cores; `.venv/bin/python scripts/results.py NAME`
# for some).
results: install
	$(PY) scripts/results.py

# Regenerates data/percentiles/{tiny,null}.json with `adq calibrate` (embedded defaults, a scratch home).
calibrate-tiny: install
	ADQ_HOME=.adq/calibrate $(ADQ) calibrate data/prompts/calibration.txt --preset tiny --out data/percentiles/tiny.json
	ADQ_HOME=.adq/calibrate $(ADQ) calibrate data/prompts/calibration.txt --preset null --out data/percentiles/null.json

clean:
	rm -rf .adq .pytest_cache
