# mirkit: describe music audio and classify it (see README.md)
#
#   make demo      extract the example audio, tag it, classify it (builds what it needs)
#   make test      run the test suite (the same command CI runs)
#   make install PREFIX=~/.local   executables + man pages
#   make man       check that every man page renders without warnings
#   make models    build the default TensorFlow models under models/
#   make bench     run the benchmarks (slow; needs the oracle extra: pip install -e .[oracle])

PYTHON  ?= python3
VENV    ?= .venv
PREFIX  ?= $(HOME)/.local
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
TOOLS   := extract json2sig mkgroundtruth gridsearch retrain classify
MANPAGES := $(wildcard man/man1/*.1) man/man7/mirkit.7
export PATH := $(CURDIR)/bin:$(abspath $(VENV))/bin:$(PATH)
export OMP_NUM_THREADS ?= 1

.PHONY: all venv test demo install uninstall man models bench clean

all: venv

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

test: venv
	$(PY) -m pytest

-include mk/*.mk

# The product's main job, on the example audio in examples/audio (see its README for the
# licences): describe every track, tag it with the MusiCNN auto-tagger, classify the tags
# with a transfer head, and print a summary.
DEMO_AUDIO := $(wildcard examples/audio/*.wav examples/audio/*.flac examples/audio/*.ogg)
DEMO_DIR   := examples/demo

demo: venv models
	@mkdir -p $(DEMO_DIR)
	@echo "== extract: Essentia music-2.0 descriptors + msd-musicnn-1 tags, $(words $(DEMO_AUDIO)) tracks"
	extract -q -f json --model msd-musicnn-1 $(DEMO_AUDIO) > $(DEMO_DIR)/demo.jsonl
	@echo "== classify: a transfer head on the MusiCNN embeddings"
	classify -f json -m $(MODELS_DIR)/demo_tonal_noisy-msd-musicnn-1.pb $(DEMO_DIR)/demo.jsonl > $(DEMO_DIR)/demo-classified.jsonl
	@$(PY) examples/summarize.py < $(DEMO_DIR)/demo-classified.jsonl
	@echo "== the records (one JSON object per line): $(DEMO_DIR)/demo-classified.jsonl"

# A private environment under PREFIX/lib/mirkit (as pipx does), the executables linked
# into PREFIX/bin: the install does not depend on this checkout or on the system Python.
install:
	$(PYTHON) -m venv '$(PREFIX)/lib/mirkit'
	'$(PREFIX)/lib/mirkit/bin/pip' install -q --upgrade pip
	'$(PREFIX)/lib/mirkit/bin/pip' install -q .
	install -d '$(PREFIX)/bin' '$(PREFIX)/share/man/man1' '$(PREFIX)/share/man/man7'
	for t in $(TOOLS); do ln -sf '$(PREFIX)/lib/mirkit/bin/'$$t '$(PREFIX)/bin/'$$t; done
	install -m 644 man/man1/*.1 '$(PREFIX)/share/man/man1/'
	install -m 644 man/man7/*.7 '$(PREFIX)/share/man/man7/'
# the models built by `make models`: an installed mirkit does not see the source tree's
# models/; ~/.local/share/mirkit/models is in its search path (PREFIX=~/.local), for another
# PREFIX set MIRKIT_MODELS=$(PREFIX)/share/mirkit/models
	if ls models/*.pb >/dev/null 2>&1; then \
	  install -d '$(PREFIX)/share/mirkit/models' && \
	  install -m 644 models/*.pb models/*.json '$(PREFIX)/share/mirkit/models/'; fi

uninstall:
	for t in $(TOOLS); do rm -f '$(PREFIX)/bin/'$$t '$(PREFIX)/share/man/man1/'$$t.1; done
	rm -rf '$(PREFIX)/lib/mirkit'
	rm -f '$(PREFIX)/share/man/man7/mirkit.7'
	for m in models/*.pb models/*.json; do rm -f '$(PREFIX)/share/mirkit/models/'$$(basename $$m); done

man:
	@status=0; for page in $(MANPAGES); do \
	  out=$$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l $$page 2>&1 >/dev/null); \
	  if [ -n "$$out" ]; then echo "$$page:"; echo "$$out"; status=1; fi; \
	done; [ $$status = 0 ] && echo "all $(words $(MANPAGES)) man pages render without warnings"

# Benchmarks measure the speed and fidelity targets; most need the oracle extra
# (.venv/bin/pip install -e '.[oracle]', make oracle-tf) and fetch real music from Debian
# packages at run time (apt-get). Each prints its figures; see the script's docstring.
BENCHMARKS := $(wildcard benchmarks/bench_*.py)

bench: venv
	@for b in $(BENCHMARKS); do echo "== $$b"; $(PY) $$b || echo "$$b failed"; done

clean:
	rm -rf build dist lib/*.egg-info .pytest_cache examples/work examples/demo
