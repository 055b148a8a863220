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

.PHONY: all install gen run migrate test fuzz lint fmt bench clean

all: gen

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(INSTALLED)

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

test: gen node_modules/.bin/buf
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fuzz suite with random seeds and many examples per RPC (a fixed seed runs in `make test`).
fuzz: gen
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} $(BIN)/python -m pytest tests/test_fuzz.py

node_modules/.bin/buf: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# The last released contract: `buf breaking` refuses changes that would break generated clients.
PROTO_RELEASE ?= proto-v1.0.0

lint: gen node_modules/.bin/buf
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	node_modules/.bin/buf lint
	@if git rev-parse -q --verify "refs/tags/$(PROTO_RELEASE)" >/dev/null; then \
	  node_modules/.bin/buf breaking --against ".git#tag=$(PROTO_RELEASE)" && echo "buf breaking: compatible with $(PROTO_RELEASE)"; \
	else echo "buf breaking: tag $(PROTO_RELEASE) not in this clone (shallow?); tests/test_buf_breaking.py still checks the rule"; fi

fmt: install
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

bench: gen
	@found=0; for b in bench/*_bench.py; do [ -e "$$b" ] || continue; found=1; $(BIN)/python "$$b" || exit 1; done; \
	[ $$found = 1 ] || echo "no benchmarks yet"

clean:
	rm -rf $(VENV) gen node_modules .pytest_cache .mypy_cache .ruff_cache
