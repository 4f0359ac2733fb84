# Two commands set everything up on a fresh machine with Python >= 3.10:
#   make demo   create .venv, install, run the whole pipeline on the built-in ADK example
#   make test   create .venv, install, run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_DIR ?= demo_output

.PHONY: demo test install clean

install: $(VENV)/.installed

# torch==2.13.0 first: on a CPU-only machine it is the CPU build; with a GPU pip fetches the
# CUDA build of the same release. If that pin is unavailable, the range in pyproject.toml applies.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 || echo "note: torch==2.13.0 not available here; pip resolves torch from pyproject.toml"
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: install
	$(BIN)/cryogeom demo -o $(DEMO_DIR)

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
