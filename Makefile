# The README's two commands: `make demo` and `make test`. Both create or refresh the local venv
# (.venv/) when pyproject.toml changed, and are fast when it is up to date.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PACKAGES := saturate servers loadgen monitors scans

.PHONY: demo test lint unit integration bench clean perf-analyzer native

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

# saturate's native gRPC sender (tools/build_native.sh): loadgen/clients/_cgrpc.c compiled against
# gRPC's C core (Debian libgrpc-dev, via apt) for the threaded driver; without it grpcio sends, and
# each level's client.sender says which one did. The demo builds it when it can and goes on if not.
native: $(STAMP)
	@sh tools/build_native.sh $(VENV)

demo: $(STAMP)
	-@sh tools/build_native.sh $(VENV)
	$(VENV)/bin/saturate demo --out demo-results

test: lint perf-analyzer native
	$(PY) -m pytest -q -ra

unit: $(STAMP)
	$(PY) -m pytest -q -ra tests/unit

integration: $(STAMP) perf-analyzer native
	$(PY) -m pytest -q -ra tests/integration

lint: $(STAMP)
	$(VENV)/bin/ruff check $(PACKAGES) tests benchmarks
	$(VENV)/bin/mypy --strict $(PACKAGES)

bench: $(STAMP)
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache loadgen/clients/_cgrpc*.so
