# The two commands of the README: `make run` and `make test`. Each creates or updates the
# virtualenv itself, so both work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-cluster lint typecheck wasm-check bench e2e clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamps: reinstall only when pyproject.toml changes.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python $(VENV)/.installed-lambda-runtime
	$(BIN)/pip install --quiet -e '.[examples,clients]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python $(VENV)/.installed-lambda-runtime
	$(BIN)/pip install --quiet -e '.[examples,clients,dev]'
	touch $@ $(VENV)/.installed-run

# What Lambda's Python runtime gives every function (boto3, botocore, awslambdaric, at its
# versions), apart from faasbox's own packages: functions import these and nothing of the
# virtualenv's (faasbox/execution/process/python/search_path.py).
LAMBDA_RUNTIME := faasbox/execution/process/python/lambda_runtime.txt
$(VENV)/.installed-lambda-runtime: $(LAMBDA_RUNTIME) | $(BIN)/python
	rm -rf $(VENV)/lambda-runtime
	$(BIN)/pip install --quiet --target $(VENV)/lambda-runtime -r $(LAMBDA_RUNTIME)
	touch $@

# A port in use (a faasbox already running) fails first, before the venv or data dir change.
run:
	@$(PYTHON) -c "import socket; s = socket.socket(socket.AF_INET6 if ':' in '$(HOST)' else socket.AF_INET); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('$(HOST)', $(PORT)))" 2>/dev/null \
		|| { echo "Error: $(HOST):$(PORT) is in use (is faasbox already running?); stop it, or: make run PORT=8001" >&2; exit 1; }
	@$(MAKE) --no-print-directory $(VENV)/.installed-run $(VENV)/.installed-lambda-runtime
	$(BIN)/faasbox serve examples --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check faasbox tests examples
	$(BIN)/ruff format --check faasbox tests

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

# The cluster's tests run beside the rest (they mostly wait on Ray, in a network namespace of
# their own): their output goes to build/test-cluster.log and is printed after the rest's.
# --durations: the slowest tests, named in every run's log (the suite is kept under 15 min).
# compileall: faasbox's bytecode written once, where PYTHONDONTWRITEBYTECODE would have every
# server, CLI and zygote the tests start compile it again (~0.2 s of CPU each).
test: lint typecheck toolchains chromium postgresql $(VENV)/.installed-lambda-runtime
	@mkdir -p build
	@$(BIN)/python -m compileall -q faasbox
	@$(MAKE) --no-print-directory test-cluster > build/test-cluster.log 2>&1 & cluster=$$!; \
	$(BIN)/python -m pytest tests --ignore=tests/cluster --durations=25; rest=$$?; \
	wait $$cluster; cluster_status=$$?; \
	echo "==================== tests/cluster (run beside the rest) ===================="; \
	cat build/test-cluster.log; \
	[ $$rest = 0 ] && [ $$cluster_status = 0 ]

# The Ray executor's tests on a 2-node Ray cluster, in a network namespace with only loopback
# (Ray binds to the machine's primary address whatever it is told): root only; elsewhere
# tests/cluster/conftest.py skips them, saying why.
test-cluster: $(VENV)/.installed-test
	@if [ "$$(id -u)" = 0 ]; then \
		unshare --net sh -c 'ip link set lo up && $(BIN)/python -m pytest tests/cluster'; \
	else \
		$(BIN)/python -m pytest tests/cluster; \
	fi

# The committed grayscale.wasm must be what its source builds to (skipped, with a message,
# where the wasm32-wasi toolchain is not installed or is another one than toolchain.txt's).
# `make test` runs it as a test (tests/functional/test_wasm.py), so a skip shows in its summary.
wasm-check: toolchains
	sh examples/wasm-grayscale/build.sh --check
	sh examples/wasm-classify/build.sh --check

# The WebAssembly toolchains, from Debian's packages: clang for examples/wasm-grayscale (and
# build.sh --check), rustc with the wasm32 standard library for the Rust-built test in
# tests/functional/test_wasm.py (it uses std only: no crates).
WASM_C_PACKAGES := clang lld wasi-libc libclang-rt-14-dev-wasm32 libstb-dev
WASM_RUST_PACKAGES := rustc cargo libstd-rust-dev-wasm32
.PHONY: toolchains
toolchains:
	@missing=$$(for p in $(WASM_C_PACKAGES) $(WASM_RUST_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; \
	done | tr '\n' ' '); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's WebAssembly toolchains for the tests: $$missing"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	  else \
	    echo "The WebAssembly tests need Debian's toolchains; missing: $$missing" >&2; \
	    echo "Installing them needs root: sudo apt-get update && sudo apt-get install -y $$missing" >&2; \
	    exit 1; \
	  fi; \
	fi

# Every benchmark, each a ratio against a bare baseline run side by side (bench/RESULTS.md).
bench: $(VENV)/.installed-test
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; } || \
	  { echo "The benchmarks need wrk: sudo apt-get install -y wrk" >&2; exit 1; }
	$(BIN)/python -m bench.run

# The browser tests (tests/e2e) drive Debian's chromium through Playwright; Playwright's own
# browser download (`playwright install`) is never used.
CHROMIUM := /usr/bin/chromium
.PHONY: chromium
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's chromium for the browser tests (tests/e2e)"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	  else \
	    echo "The browser tests (tests/e2e) need Debian's chromium at $(CHROMIUM)." >&2; \
	    echo "Installing it needs root: sudo apt-get update && sudo apt-get install -y chromium" >&2; \
	    exit 1; \
	  fi; \
	fi

# The Dapr state tests start a PostgreSQL server of their own (tests/postgres.py) from
# Debian's postgresql package: initdb into a temp dir, a free port, stopped afterwards.
PG_CTL_GLOB := /usr/lib/postgresql/*/bin/pg_ctl
.PHONY: postgresql
postgresql:
	@if ! ls $(PG_CTL_GLOB) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's postgresql for the Dapr state store tests"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; \
	  else \
	    echo "The Dapr state store tests need Debian's postgresql (pg_ctl, initdb)." >&2; \
	    echo "Installing it needs root: sudo apt-get update && sudo apt-get install -y postgresql" >&2; \
	    exit 1; \
	  fi; \
	fi

e2e: $(VENV)/.installed-test chromium
	$(BIN)/python -m pytest tests/e2e

clean:
	rm -rf $(VENV) .faasbox .mypy_cache .ruff_cache .pytest_cache test-artifacts
