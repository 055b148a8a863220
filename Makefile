# The two commands a user needs: `make run` and `make test`. Everything else is on the way.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
GEN := gen/python
LINT_PATHS := service tests $(wildcard bench)
PROTOS := $(wildcard proto/invoices/v1/*.proto)
INSTALLED := $(VENV)/.installed
GENERATED := $(GEN)/.generated

.PHONY: all install lock gen run migrate test fuzz lint fmt bench bench-compare clean node-suite clients clients-ts client-tools

all: gen

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installs exactly what requirements/dev.lock pins, every file checked against its hash: nothing is resolved
# at install time. The project itself goes in without build isolation (its setuptools is in the lock).
$(INSTALLED): requirements/dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes --no-deps -r requirements/dev.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/pip check >/dev/null
	touch $@

install: $(INSTALLED)

# Re-resolves the lock files from pyproject.toml (keeping current pins where they still fit; UPGRADE=1 takes
# the newest versions inside the bounds): runtime (the container), dev (make run/test, CI), codegen (the
# container's stub generation).
UV_COMPILE = $(BIN)/uv pip compile --universal --python-version 3.11 --generate-hashes -q $(if $(UPGRADE),--upgrade)
$(BIN)/uv: | $(BIN)/python
	$(BIN)/pip install -q "$$(grep -m1 '^uv==' requirements/dev.lock | cut -d' ' -f1)"

lock: $(BIN)/uv
	$(UV_COMPILE) pyproject.toml -o requirements/runtime.lock
	$(UV_COMPILE) pyproject.toml --extra dev -o requirements/dev.lock
	$(UV_COMPILE) requirements/codegen.in -c requirements/dev.lock -o requirements/codegen.lock
	@echo "locked: requirements/{runtime,dev,codegen}.lock; run make install to apply"

# Stubs are built, never edited: messages, gRPC stubs, typing stubs and a descriptor set with
# comments (GetInvoiceModel reads field descriptions from it).
$(GENERATED): $(PROTOS) $(INSTALLED)
	rm -rf $(GEN) && mkdir -p $(GEN)/invoices/v1
	$(BIN)/python -m grpc_tools.protoc -Iproto -Ithird_party/googleapis \
	  --python_out=$(GEN) --grpc_python_out=$(GEN) \
	  --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy --mypy_out=$(GEN) \
	  --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc --mypy_grpc_out=$(GEN) \
	  $(PROTOS)
	$(BIN)/python -m grpc_tools.protoc -Iproto -Ithird_party/googleapis --include_source_info \
	  --descriptor_set_out=$(GEN)/invoices/v1/descriptor_set.binpb $(PROTOS)
	touch $(GEN)/invoices/__init__.py $(GEN)/invoices/v1/__init__.py $(GEN)/invoices/py.typed
	echo "$(CURDIR)/$(GEN)" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/invoice_service_gen.pth"
	touch $@

gen: $(GENERATED)

run: gen
	$(BIN)/python -m service serve

migrate: gen
	$(BIN)/python -m service migrate

test: gen node-suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fuzz suite with random seeds and many examples per RPC (a fixed seed runs in `make test`).
fuzz: gen
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} $(BIN)/python -m pytest tests/test_fuzz.py

# npm: buf, ts-proto, TypeScript and @grpc/grpc-js, pinned by package-lock.json.
NODE_DEPS := node_modules/.installed
$(NODE_DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# TypeScript stubs (ts-proto, @grpc/grpc-js clients) and the Node.js client suite compiled against them.
TS_GEN := gen/clients/ts/.generated
$(TS_GEN): $(PROTOS) buf.yaml buf.gen.ts.yaml $(NODE_DEPS)
	rm -rf gen/clients/ts
	node_modules/.bin/buf generate --template buf.gen.ts.yaml
	touch $@

# The TypeScript stubs alone (npm packages only; no Go or Java plugins needed).
clients-ts: $(TS_GEN)
	@echo "TypeScript stubs in gen/clients/ts"

NODE_SUITE := gen/node-suite/.built
$(NODE_SUITE): $(TS_GEN) $(wildcard tests/node/*.ts) tests/node/tsconfig.json
	rm -rf gen/node-suite
	node_modules/.bin/tsc -p tests/node/tsconfig.json
	touch $@

node-suite: $(NODE_SUITE)

# Go and Java stubs for client teams (buf.gen.yaml), with the TypeScript ones. Plugins: `make client-tools`.
clients: $(TS_GEN)
	rm -rf gen/clients/go gen/clients/java
	node_modules/.bin/buf generate
	@echo "stubs in gen/clients/{go,java,ts}"

# The Debian packages that provide the Go and Java plugins, and what compiling their output needs.
CLIENT_PACKAGES := protobuf-compiler protoc-gen-go protoc-gen-go-grpc protobuf-compiler-grpc-java-plugin \
  golang-go golang-google-protobuf-dev golang-google-grpc-dev golang-google-genproto-dev \
  openjdk-17-jdk-headless libprotobuf-java libgrpc-java libgoogle-common-protos-java libgeronimo-annotation-1.3-spec-java
client-tools:
	@if dpkg -s $(CLIENT_PACKAGES) >/dev/null 2>&1; then echo "client plugins installed"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get install -y -q --no-install-recommends $(CLIENT_PACKAGES) >/dev/null \
	  || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $(CLIENT_PACKAGES) >/dev/null; }; \
	else echo "run: sudo apt-get install $(CLIENT_PACKAGES)"; exit 1; fi

# The last released contract: `buf breaking` refuses changes that would break generated clients. The tag
# names it; the commit is the same state for clones that fetched no tags.
PROTO_RELEASE ?= proto-v1.0.0
PROTO_RELEASE_COMMIT ?= 214557b157f82fdc3128aec7d67606cd03ae91bb

lint: gen $(NODE_DEPS)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	node_modules/.bin/buf lint
	@if git rev-parse -q --verify "refs/tags/$(PROTO_RELEASE)" >/dev/null; then against="tag=$(PROTO_RELEASE)"; \
	elif git cat-file -e "$(PROTO_RELEASE_COMMIT)^{commit}" 2>/dev/null; then against="ref=$(PROTO_RELEASE_COMMIT)"; \
	else echo "buf breaking: neither $(PROTO_RELEASE) nor $(PROTO_RELEASE_COMMIT) is in this clone (shallow? git fetch --unshallow)"; exit 1; fi; \
	node_modules/.bin/buf breaking --against ".git#$$against" && echo "buf breaking: compatible with $(PROTO_RELEASE) ($$against)"

fmt: install
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

bench: gen
	@found=0; for b in bench/*_bench.py; do [ -e "$$b" ] || continue; found=1; $(BIN)/python "$$b" || exit 1; done; \
	[ $$found = 1 ] || echo "no benchmarks yet"

# Before/after in one run on this machine: this checkout's bench scripts against the service of REV_A and of
# REV_B (temporary worktrees), side by side, taking turns window by window; flags figures worse by over 5%.
REV_A ?= c97655e
REV_B ?= HEAD
bench-compare: gen
	$(BIN)/python bench/compare.py $(REV_A) $(REV_B) $(COMPARE_ARGS)

clean:
	rm -rf $(VENV) gen node_modules .pytest_cache .mypy_cache .ruff_cache
