# TensorFlow models that work offline (included by the top Makefile).
#
#   make models    installs the musicnn PyPI package (ISC licence) WITHOUT its outdated
#                  dependency pins, converts its MSD and MTT MusiCNN checkpoints into
#                  Essentia-format models/msd-musicnn-1.pb and models/mtt-musicnn-1.pb (+ .json),
#                  and trains a small DEMO transfer head on msd-musicnn-1 embeddings of
#                  synthetic audio: models/demo_tonal_noisy-msd-musicnn-1.pb (+ .json).
#   make oracle-tf installs essentia-tensorflow into .oracle-tf/ for the TF oracle tests.
#
# Afterwards `extract --model msd-musicnn-1 song.wav` works with no download (models/ is in
# the model search path).

MODELS_DIR ?= models
TF_MODELS = $(MODELS_DIR)/msd-musicnn-1.pb $(MODELS_DIR)/mtt-musicnn-1.pb \
            $(MODELS_DIR)/demo_tonal_noisy-msd-musicnn-1.pb

.PHONY: models clean-models oracle-tf

models: $(TF_MODELS)

$(TF_MODELS) &: lib/mirkit/tf/convert_musicnn.py | venv
	@$(PY) -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('musicnn') is None)" \
	  || $(PIP) install -q --no-deps musicnn==0.1.0
	$(PY) -m mirkit.tf.convert_musicnn --verify --demo-head -o $(MODELS_DIR)

clean-models:
	rm -f $(TF_MODELS) $(TF_MODELS:.pb=.json)

# Test oracle for tests/test_tf_*.py and benchmarks/bench_tf.py: essentia-tensorflow in its own
# directory, never in the venv: its bundled TensorFlow aborts a process that also imports
# tensorflow-cpu ("Op with name Bitcast ALREADY_EXISTS").
ORACLE_TF_DIR ?= .oracle-tf

oracle-tf: | venv
	$(PIP) install -q --no-deps --target $(ORACLE_TF_DIR) essentia-tensorflow==2.1b6.dev1389
