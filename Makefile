# The two set-up commands of the README: `make demo` and `make test`. Each creates or refreshes
# the virtual environment in .venv with pip (CPU torch; see pyproject.toml for the cap) and installs
# what it needs: `demo` the runtime plus the `video` extra, `test` the `dev` extra (all extras but
# teacher and mediapipe). One stamp per install, so `make demo` then `make test` adds dev on top,
# and a changed pyproject.toml or lock reinstalls.
#
# Every install is constrained by requirements/lock.txt: the exact versions the test suite last
# passed with (docs/install.md). `make lock` refreshes it from a fresh venv with the newest versions
# the bounds in pyproject.toml allow; `make smoke VENV=... CONSTRAINTS=` is CI's check of that newest set.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.installed-demo
DEV_STAMP := $(VENV)/.installed-dev
LOCK := requirements/lock.txt
# `make ... CONSTRAINTS=` installs the newest versions the bounds allow instead of the locked ones.
CONSTRAINTS ?= -c $(LOCK)
CUDA_GUARD := import torch, sys; sys.exit('CUDA torch installed: remove it and reinstall with the cap in pyproject.toml' if torch.version.cuda else 0)

.PHONY: venv venv-demo demo demo-synth test smoke lock clean-venv

venv: $(DEV_STAMP)

venv-demo: $(DEMO_STAMP)

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(DEMO_STAMP): pyproject.toml $(LOCK) | $(PY)
	$(PY) -m pip install -q $(CONSTRAINTS) -e ".[video]"
	$(PY) -c "$(CUDA_GUARD)"
	touch $@

# dev includes video, so it stands for the demo's install too.
$(DEV_STAMP): pyproject.toml $(LOCK) | $(PY)
	$(PY) -m pip install -q $(CONSTRAINTS) -e ".[dev]"
	$(PY) -c "$(CUDA_GUARD)"
	touch $@ $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) -m realtime.video assets/demo.mp4 -o demo_out.mp4 --landmarks demo_out.jsonl

# `train evaluate --ced` draws with matplotlib: the `train` extra (part of dev).
demo-synth: $(DEV_STAMP)
	$(PY) -m train evaluate assets/rcn_mtfl_synth.safetensors --data synth:test --norm eye_centres,box --ced demo_out_ced.png

test: $(DEV_STAMP)
	$(PY) -m pytest -q

# A few minutes: the demo on the bundled clip, then the tests of imports, packaging and the APIs
# that differ between releases of the dependencies (OpenCV dnn, PyAV, ONNX Runtime, OpenVINO, NNCF,
# Qt). CI runs it in a second venv with the newest versions the bounds allow (.ci/run).
SMOKE_OUT ?= $(VENV)/smoke
SMOKE_TESTS := tests/test_import_rules.py tests/test_tflite_engine.py tests/test_stages_detector.py \
	tests/test_pipeline_video_out.py tests/test_altstack.py tests/test_qt_binding.py tests/test_versions.py tests/test_api.py \
	tests/test_backends.py::test_landmarker_runs_on_the_named_backend \
	tests/test_backends.py::test_auto_picks_a_present_backend_within_tolerance_and_caches_it
smoke: $(DEV_STAMP)
	mkdir -p $(SMOKE_OUT)
	$(PY) -m realtime.video --version
	$(PY) -m realtime.video assets/demo.mp4 -o $(SMOKE_OUT)/demo.mp4 --landmarks $(SMOKE_OUT)/demo.jsonl
	$(PY) -m pytest -q -p no:cacheprovider $(SMOKE_TESTS)

# Refresh the lock: a fresh venv gets the newest versions the bounds allow for everything `make test`
# installs, and pip freeze writes them (torch without its +cpu label: the constraint
# torch==X matches the local X+cpu file, which pip prefers, and PyPI's X elsewhere). Then run
# `make clean-venv test` and commit the lock only when the suite passes.
LOCK_VENV := .cache/lock-venv
lock:
	rm -rf $(LOCK_VENV)
	python3 -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install -q -e ".[dev]"
	$(LOCK_VENV)/bin/python -c "$(CUDA_GUARD)"
	mkdir -p $(dir $(LOCK))
	{ echo "# Exact versions (Python 3.11, Linux x86_64), committed once \`make test\` passed on them: the pip"; \
	  echo "# constraints of every install (Makefile, .ci/run). Written by \`make lock\` on $$(date -u +%Y-%m-%d); see docs/install.md."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable | sed -e 's/^\(torch==[^+]*\)+.*/\1/'; } > $(LOCK)
	rm -rf $(LOCK_VENV)

clean-venv:
	rm -rf $(VENV)
