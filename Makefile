# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo web screenshots test lint typecheck layers bench clean deliberate-bugs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mailbot demo --dir demo

# The workbench on the demo's data (run `make demo` first); the demo prints the login.
web: $(STAMP)
	$(BIN)/mailbot --config demo/config.toml web

# The README's pictures of the workbench, taken by the browser test from the demo's data.
screenshots: $(STAMP)
	mkdir -p docs/screenshots
	MAILBOT_SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest -q tests/entrypoints/test_web_browser.py -k demo_data

test: $(STAMP)
	$(BIN)/ruff check mailbot tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

# Issue 13's eight deliberate one-line bugs, each applied by hand, run against its named tests, reverted.
deliberate-bugs: $(STAMP)
	$(BIN)/python tests/deliberate_bugs.py

lint: $(STAMP)
	$(BIN)/ruff check mailbot tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
