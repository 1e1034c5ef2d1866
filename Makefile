# The two commands (README.md): `make demo` and `make test`. Each creates .venv on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test env lab clean

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need Python 3.11 as '$(PY)' (set PY=/path/to/python3.11)"; exit 2; }
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'  # bench: the library policies' tests run too
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(BIN)/xbot demo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

lab: $(STAMP)
	$(BIN)/xbot lab

clean:
	rm -rf $(VENV) .xbot reports/runs reports/index.html
