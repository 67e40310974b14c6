# xds-server: `make demo` and `make test` work on a fresh clone; both set up their own venv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install test unit e2e demo bench bench-peers bench-responsiveness protos validate-examples clean fuzz

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## all tests: unit, golden, corpus, ADS protocol and e2e with a real Envoy
test: install
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

unit: install
	$(PY) -m pytest -q -m 'not e2e' $(PYTEST_ARGS)

e2e: install
	$(PY) -m pytest -q -m e2e $(PYTEST_ARGS)

## the control plane on examples/, a real Envoy, real backends and the route_guide client
demo: install
	$(PY) -m demo.run $(ARGS)

bench: install
	$(PY) -m bench $(ARGS)

## the scale propagation scenario against sovereign (own venv under bench/), side by side; N services (default 1000)
PEERS_VENV ?= bench/.peers-venv
SOVEREIGN_SPEC ?= sovereign[orjson]>=0.32,<0.33
N ?= 1000
$(PEERS_VENV)/.installed-stamp:
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet '$(SOVEREIGN_SPEC)'
	touch $@

bench-peers: install $(PEERS_VENV)/.installed-stamp
	PEERS_VENV=$(PEERS_VENV) $(PY) -m bench.peers --services $(N) $(ARGS)

## time to first ADS response for new clients while a full build of 10,000 services runs (and at idle)
bench-responsiveness: install
	$(PY) -m bench.responsiveness $(ARGS)

protos: install
	$(PY) -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. protos/helloworld.proto protos/route_guide.proto
	$(PY) -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. protos/grpcecho.proto

## long property-based fuzz run of tests/test_fuzz.py (random seed unless FUZZ_SEED is given)
FUZZ_EXAMPLES ?= 20000
FUZZ_SEED ?= $(shell date +%s)
fuzz: install
	@echo "fuzz: FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED)"
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider tests/test_fuzz.py -k fuzz_ --hypothesis-seed=$(FUZZ_SEED) --hypothesis-show-statistics $(PYTEST_ARGS)

validate-examples: install
	$(VENV)/bin/xds-server validate examples/

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
