# One virtual environment, made and filled on first use, so every target works on a fresh
# machine with nothing but Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# tool (a command or a file):Debian package: Tesseract OCR (pixel tests), dciodvfy from
# dicom3tools (IOD checks), Orthanc and its DICOMweb plugin (the DICOMweb tests' store).
SYSTEM_TOOLS := tesseract:tesseract-ocr dciodvfy:dicom3tools Orthanc:orthanc \
	/usr/share/orthanc/plugins/libOrthancDicomWeb.so:orthanc-dicomweb
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test test-slow lint generate reliability bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@# Debian tools some tests use, where apt-get is usable; never fails the install: the
	@# tests that need a missing tool skip and say why.
	@for pair in $(SYSTEM_TOOLS); do tool=$${pair%%:*}; package=$${pair#*:}; \
		command -v $$tool >/dev/null || [ -e $$tool ] || { command -v apt-get >/dev/null \
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
	$(BIN)/python -m pytest -q -n auto

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

reliability: $(STAMP)  # the figures of docs/reliability.md
	$(BIN)/python tests/reliability.py --write

lint: $(STAMP)
	$(BIN)/ruff check .

generate: $(STAMP)
	$(BIN)/python -m deid.standard.generate
	$(BIN)/python -m deid.curator.tcia --render-only

# The benchmark against the pydicom floor and the peers (installed into benchmarks/.peers/ on
# first use); table and plot in benchmarks/results/. BENCH_ARGS=--sizes 500,4000 to change N.
# Then huge instances, streamed: HUGE_ARGS sets their sizes.
HUGE_ARGS ?= --size-mb 512 --size-mb 2048
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.huge $(HUGE_ARGS) --json benchmarks/results/huge.json

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --quick --results out/bench-quick

clean:
	rm -rf $(VENV) out build *.egg-info
