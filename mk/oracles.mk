# Test oracles (optional; the tests that need them skip without them).
#
#   pip install -e '.[oracle]'   essentia (extractor oracle) + scikit-learn (SVM oracle)
#   make oracle-tf               essentia-tensorflow in .oracle-tf/ (see models.mk)
#   make oracle-gaia             Python 3.7 venv in .oracle-gaia/ with essentia==2.1b6.dev234,
#                                the last wheel whose GaiaTransform runs .history files
#                                (history-format.md §12); needs a Python 3.7 (pyenv has one)

PYTHON37 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.7*/bin/python) $(shell command -v python3.7))

.PHONY: oracle-gaia

oracle-gaia: .oracle-gaia/.installed

.oracle-gaia/.installed:
	@test -n "$(PYTHON37)" || { echo "oracle-gaia: no Python 3.7 found (set PYTHON37=...)"; exit 2; }
	$(PYTHON37) -m venv .oracle-gaia
	.oracle-gaia/bin/pip install -q essentia==2.1b6.dev234
	touch $@
