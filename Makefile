# The two set-up commands of the README: `make demo` and `make test`. Each creates or refreshes
# the virtual environment in .venv with pip (CPU torch; see pyproject.toml for the cap) and installs
# what it needs: `demo` the runtime plus the `video` extra, `test` the `dev` extra (all extras but
# teacher and mediapipe). One stamp per install, so `make demo` then `make test` adds dev on top,
# and a changed pyproject.toml reinstalls.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.installed-demo
DEV_STAMP := $(VENV)/.installed-dev
CUDA_GUARD := import torch, sys; sys.exit('CUDA torch installed: remove it and reinstall with the cap in pyproject.toml' if torch.version.cuda else 0)

.PHONY: venv venv-demo demo demo-synth test clean-venv

venv: $(DEV_STAMP)

venv-demo: $(DEMO_STAMP)

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[video]"
	$(PY) -c "$(CUDA_GUARD)"
	touch $@

# dev includes video, so it stands for the demo's install too.
$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -c "$(CUDA_GUARD)"
	touch $@ $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) -m realtime.video assets/demo.mp4 -o demo_out.mp4 --landmarks demo_out.jsonl

# `train evaluate --ced` draws with matplotlib: the `train` extra (part of dev).
demo-synth: $(DEV_STAMP)
	$(PY) -m train evaluate assets/rcn_mtfl_synth.safetensors --data synth:test --norm eye_centres,box --ced demo_out_ced.png

test: $(DEV_STAMP)
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
