# One venv in .venv; every target installs what it needs first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench run emulator screenshots clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/syncd demo

run: install
	$(BIN)/syncd run

emulator: install
	$(BIN)/syncd emulator

test: install
	$(BIN)/python -m pytest -q -n 2 --maxfail=20

lint: install
	$(BIN)/ruff check syncd tests bench

screenshots: install
	SYNCD_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/web -k "popup or center or profile"

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) state .pytest_cache .hypothesis
