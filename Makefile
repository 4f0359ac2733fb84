# Two commands set everything up on a fresh machine with Python >= 3.10:
#   make demo   create .venv, install, run the whole pipeline on the built-in ADK example
#   make test   create .venv, install, run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_DIR ?= demo_output

.PHONY: demo test install browser clean

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

# The report test renders HTML in headless Chromium; install Debian's package where we can.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "note: could not install chromium; the report rendering test will be skipped"; \
	  else echo "note: chromium not found; the report rendering test will be skipped"; fi; }

test: install browser
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
