PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test test-slow lint venv clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	# the CPU build of torch lies on local disk: install it first so nothing pulls a CUDA build
	$(BIN)/python -m pip install -q torch==2.13.0

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	# 1. an unchanged training script with a realistic bug, observed by `nndoctor run`
	OMP_NUM_THREADS=1 $(BIN)/nndoctor run examples/buggy_digits.py --max-steps 60
	# 2. the whole field-guide loop on an experiment file, with the HTML report
	OMP_NUM_THREADS=1 $(BIN)/nndoctor diagnose examples/buggy_experiment.py --html report.html

test: $(VENV)/.installed
	# the browser of the report tests is installed once here (apt-get, as root), not by racing test workers;
	# NNDOCTOR_REQUIRE_BROWSER=1: a missing browser fails those tests instead of skipping them
	$(BIN)/python tests/report/browser.py
	NNDOCTOR_REQUIRE_BROWSER=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 -m "not slow" tests

# what `make test` leaves out: the rest of the corpus (tests/corpus_select.py picks the fast subset) and long tests
test-slow: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 -m slow tests

lint: $(VENV)/.installed
	$(BIN)/ruff check nndoctor tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
