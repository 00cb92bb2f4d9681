# vembetalar — the two commands a newcomer needs are `make run` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install run test lint typecheck system-deps bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

## run: the case desk on http://127.0.0.1:8000 (SQLite in ./var), demo users printed at start
run: install
	mkdir -p var
	$(BIN)/vembetalar serve --demo

## system-deps: Debian packages the suite needs (PostgreSQL, Chromium, PDF tools) when missing
system-deps:
	bash scripts/system-deps.sh

## test: lint, type-check, the agreements' own tests and static checks, then pytest
test: install system-deps lint typecheck
	$(BIN)/vembetalar packs check
	$(BIN)/vembetalar packs test
	$(BIN)/python -m pytest -n 2

lint: install
	$(BIN)/ruff check vembetalar tests bench
	$(BIN)/ruff format --check vembetalar tests bench

typecheck: install
	$(BIN)/mypy vembetalar

## bench: benchmarks (not timed tests); results go to bench/RESULTS.md by hand
bench: install
	$(BIN)/python bench/decide_batch.py
	$(BIN)/python bench/api_load.py
	$(BIN)/python bench/invoice_run.py
	$(BIN)/python bench/oversight.py  # 100 M rows, cached under var/bench (the first run makes them)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
