# Makefile fragment (included by the top Makefile): TensorFlow models that work offline.
#
#   make models    installs the musicnn PyPI package (ISC licence) WITHOUT its outdated
#                  dependency pins, converts its MSD and MTT MusiCNN checkpoints into
#                  Essentia-format models/msd-musicnn-1.pb and models/mtt-musicnn-1.pb (+ .json),
#                  and trains a small DEMO transfer head on msd-musicnn-1 embeddings of
#                  synthetic audio: models/demo_tonal_noisy-msd-musicnn-1.pb (+ .json).
#   make demo-tf   tags an audio file with msd-musicnn-1, then applies the demo head.
#
# Afterwards `extract --model msd-musicnn-1 song.wav` works with no download (models/ is in
# the model search path).

PYTHON ?= python3
MODELS_DIR ?= models
TF_MODELS = $(MODELS_DIR)/msd-musicnn-1.pb $(MODELS_DIR)/mtt-musicnn-1.pb \
            $(MODELS_DIR)/demo_tonal_noisy-msd-musicnn-1.pb

.PHONY: models demo-tf clean-models oracle-tf

models: $(TF_MODELS)

$(TF_MODELS) &: lib/mirkit/tf/convert_musicnn.py
	@$(PYTHON) -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('musicnn') is None)" \
	  || $(PYTHON) -m pip install --no-deps musicnn==0.1.0
	PYTHONPATH=lib $(PYTHON) -m mirkit.tf.convert_musicnn --verify --demo-head -o $(MODELS_DIR)

# DEMO_AUDIO: any audio file; by default a synthetic 10 s tone is written to build/.
DEMO_AUDIO ?= build/demo-tone.wav

build/demo-tone.wav:
	@mkdir -p build
	$(PYTHON) -c "import numpy as np, soundfile as sf; t = np.arange(441000) / 44100; \
	  sf.write('$@', (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2).astype('float32'), 44100)"

demo-tf: models $(DEMO_AUDIO)
	PYTHONPATH=lib bin/extract --descriptors none --model msd-musicnn-1 -f json $(DEMO_AUDIO) \
	  | PYTHONPATH=lib bin/classify -m $(MODELS_DIR)/demo_tonal_noisy-msd-musicnn-1.pb -f json \
	  | $(PYTHON) -c "import json, sys; [print(json.dumps(json.loads(l)['highlevel'], indent=1)) for l in sys.stdin if l.strip()]"

clean-models:
	rm -f $(TF_MODELS) $(TF_MODELS:.pb=.json)

# Test oracle for tests/test_tf_*.py and benchmarks/bench_tf.py: essentia-tensorflow in its own
# directory (never in the venv: its bundled TF 2.5 aborts any process that also imports
# tensorflow-cpu, and installing it over `essentia` would break the extractor tests' process).
ORACLE_TF_DIR ?= .oracle-tf

oracle-tf:
	$(PYTHON) -m pip install -q --no-deps --target $(ORACLE_TF_DIR) essentia-tensorflow==2.1b6.dev1389
