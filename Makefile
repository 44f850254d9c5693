# One virtual environment, made and filled on first use, so every target works on a fresh
# machine with nothing but Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# tool:Debian package: Tesseract OCR (pixel tests), dciodvfy from dicom3tools (IOD checks).
SYSTEM_TOOLS := tesseract:tesseract-ocr dciodvfy:dicom3tools
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test test-slow lint generate reliability clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@# Debian tools some tests use, where apt-get is usable; never fails the install: the
	@# tests that need a missing tool skip and say why.
	@for pair in $(SYSTEM_TOOLS); do tool=$${pair%%:*}; package=$${pair#*:}; \
		command -v $$tool >/dev/null || { command -v apt-get >/dev/null \
		&& [ "$$(id -u)" = 0 ] && export DEBIAN_FRONTEND=noninteractive \
		&& { apt-get install -y -q $$package \
			|| { apt-get update -q && apt-get install -y -q $$package; }; } >/dev/null 2>&1; } \
		|| echo "$$package not installed: the tests that need $$tool will skip"; done
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: $(STAMP)
	rm -rf out/demo out/demo-quarantine  # a throwaway key's outputs never match another run's
	$(BIN)/deid run --sample --profile basic --output out/demo --throwaway_key --allow_quarantine

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

reliability: $(STAMP)  # the figures of docs/reliability.md
	$(BIN)/python tests/reliability.py --write

lint: $(STAMP)
	$(BIN)/ruff check .

generate: $(STAMP)
	$(BIN)/python -m deid.standard.generate

clean:
	rm -rf $(VENV) out build *.egg-info
