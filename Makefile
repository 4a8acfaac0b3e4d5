# Set-up and entry points. Every target creates .venv and installs the package on first use.
PYTHON ?= python3
VENV ?= .venv
NETWORK ?= r100
export OMP_NUM_THREADS := $(shell nproc)
export MXNET_SUBGRAPH_VERBOSE := 0

.PHONY: test demo summary clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[cpu,test]'
	# onnxruntime's wheels declare numpy>=1.24.2 but run on mxnet's numpy 1.23 (see setup.py)
	$(VENV)/bin/pip install --quiet --no-deps onnxruntime==1.16.3
	touch $@

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q tests

# The main job: synthetic faces (or DATA=<folder of identities>) -> .rec/.bin -> ArcFace on CPU
# -> verification -> face_model embeddings, all under demo_run/.
DATA ?=
demo: $(VENV)/.installed
	$(VENV)/bin/python -m recognition.demo $(if $(DATA),--data $(DATA))

summary: $(VENV)/.installed
	$(VENV)/bin/python -m recognition.network_summary --network $(NETWORK)

clean:
	rm -rf $(VENV) .pytest_cache
