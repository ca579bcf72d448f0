# The four everyday commands; each one is a script that also runs on its own.
.PHONY: setup demo test docs
# The Python that runs the tools: the activated virtual environment's, else the project's .venv/, else python3 (any
# environment with attattr and its dev tools installed works; `make docs PYTHON=/path/to/python` to choose another).
PYTHON ?= $(if $(VIRTUAL_ENV),python,$(if $(wildcard .venv/bin/python),.venv/bin/python,python3))

setup:  ## make .venv/ (torch CPU first, then attattr with its dev tools)
	bash tools/setup.sh

demo:  ## the main job: a real MNLI example → attribution scores → attribution tree in examples/out/
	.venv/bin/attattr-demo

test:  ## what CI checks: notebooks ↔ package, README, notebook tests, pytest
	bash tools/test.sh

docs:  ## the documentation site, offline, into _build/html (OUT=dir to change)
	$(PYTHON) tools/build_docs.py $(if $(OUT),--out $(OUT))
