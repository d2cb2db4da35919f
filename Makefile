# The two set-up commands of the README: `make demo` and `make test`. Each creates or refreshes
# the virtual environment in .venv with pip (CPU torch; see pyproject.toml for the cap).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo demo-synth test clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -c "import torch, sys; sys.exit('CUDA torch installed: remove it and reinstall with the cap in pyproject.toml' if torch.version.cuda else 0)"
	touch $(STAMP)

demo: venv
	$(PY) -m realtime.video assets/demo.mp4 -o demo_out.mp4 --landmarks demo_out.jsonl

demo-synth: venv
	$(PY) -m train evaluate assets/rcn_mtfl_synth.safetensors --data synth:test --norm eye_centres,box --ced demo_out_ced.png

test: venv
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
