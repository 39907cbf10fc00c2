# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo web screenshots test lint typecheck layers bench clean deliberate-bugs fuzz mutation

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
	$(BIN)/ruff format --check mailbot tests bench migrations
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

# Issue 13's eight deliberate one-line bugs, each applied by hand, run against its named tests, reverted.
deliberate-bugs: $(STAMP)
	$(BIN)/python tests/deliberate_bugs.py

# The fuzz test at 100,000 examples (CI runs a derandomized few hundred); prints its figures.
fuzz: $(STAMP)
	MAILBOT_FUZZ_EXAMPLES=100000 $(BIN)/pytest -q -p no:cacheprovider -o timeout=0 tests/domain/test_fuzz.py

# Mutation testing of mailbot/domain/ with mutmut 3 ([tool.mutmut] in pyproject: the
# domain tests only). About 15 minutes on 2 cores; `mutmut results` lists the survivors.
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet 'mutmut>=3.3,<4'
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 > mutants.log 2>&1 || (tail -c 2000 mutants.log; exit 1)
	$(BIN)/mutmut results --all true > mutants/results.txt
	$(BIN)/python tests/mutation_summary.py mutants/results.txt

lint: $(STAMP)
	$(BIN)/ruff check mailbot tests bench
	$(BIN)/ruff format --check mailbot tests bench migrations

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache mutants mutants.log
