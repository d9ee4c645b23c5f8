# The README's two commands: `make demo` and `make test`. Both create or refresh the local venv
# (.venv/) when pyproject.toml changed, and are fast when it is up to date.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PACKAGES := saturate servers loadgen monitors scans

.PHONY: demo test lint unit integration bench clean perf-analyzer

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The real perf_analyzer 2.51.0 (tools/install_perf_analyzer.sh): unpacked from the tritonclient 2.51.0
# wheel into $(VENV)/opt, run through the wrapper $(VENV)/bin/perf_analyzer (which puts libcudart from
# nvidia-cuda-runtime-cu12 on LD_LIBRARY_PATH); libb64-0d via apt. Not pip-installed: pinning
# tritonclient==2.51.0 would downgrade the tritonclient saturate uses. Quick when already there.
perf-analyzer: $(STAMP)
	@sh tools/install_perf_analyzer.sh $(VENV)

demo: $(STAMP)
	$(VENV)/bin/saturate demo --out demo-results

test: lint perf-analyzer
	$(PY) -m pytest -q -ra

unit: $(STAMP)
	$(PY) -m pytest -q -ra tests/unit

integration: $(STAMP) perf-analyzer
	$(PY) -m pytest -q -ra tests/integration

lint: $(STAMP)
	$(VENV)/bin/ruff check $(PACKAGES) tests benchmarks
	$(VENV)/bin/mypy --strict $(PACKAGES)

bench: $(STAMP)
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
