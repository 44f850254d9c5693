# One virtual environment, made and filled on first use, so every target works on a fresh
# machine with nothing but Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test test-slow lint generate bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
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

lint: $(STAMP)
	$(BIN)/ruff check .

generate: $(STAMP)
	$(BIN)/python -m deid.standard.generate

# The benchmark against the pydicom floor and the peers (installed into benchmarks/.peers/ on
# first use); table and plot in benchmarks/results/. BENCH_ARGS=--sizes 500,4000 to change N.
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)
	if [ -f benchmarks/huge.py ]; then $(BIN)/python -m benchmarks.huge; fi

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --quick --results out/bench-quick

clean:
	rm -rf $(VENV) out build *.egg-info
