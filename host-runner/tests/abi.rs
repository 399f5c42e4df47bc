//! host-runner against a real SDK-built module (the probe, `host-runner/probe`): one test per ABI
//! area, asserting what the host observed. Needs `just build` (it builds the probe for wasm32).

use std::path::PathBuf;

use portico_host_runner::abi::LogLevel;
use portico_host_runner::abi::{PeerType, StreamType};
use portico_host_runner::envoy::{Decoded, FailurePolicy, FilterSpec, Response, Worker};
use portico_host_runner::{Action, HostError, Module, Runtime, Vm};

fn probe_path() -> PathBuf {
    std::env::var_os("PORTICO_PROBE_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/wasm32-wasip1/wasm/portico_host_runner_probe.wasm")
        })
}

fn probe(runtime: &Runtime) -> Module {
    let path = probe_path();
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `just build`)", path.display()));
    runtime.compile(&bytes).unwrap()
}

fn vm(runtime: &Runtime, config: &str) -> (Vm, u32) {
    let mut vm = runtime.start_vm(&probe(runtime), "probe", b"").unwrap();
    let root = vm.start_plugin("probe", config.as_bytes()).unwrap();
    (vm, root)
}

fn http_vm() -> (Runtime, Vm, u32) {
    let runtime = Runtime::new().unwrap();
    let (vm, root) = vm(&runtime, r#"{"kind": "http"}"#);
    (runtime, vm, root)
}

fn headers(probe: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut h = vec![
        (":authority".to_owned(), "probe.test".to_owned()),
        (":path".to_owned(), "/p?q=1".to_owned()),
        (":method".to_owned(), "GET".to_owned()),
        ("x-probe".to_owned(), probe.to_owned()),
    ];
    h.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    h
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn abi_version_and_lifecycle_logs() {
    let (_rt, vm, _root) = http_vm();
    assert_eq!(vm.abi(), portico_host_runner::AbiVersion::V0_2_1);
    assert_eq!(
        vm.logs_at(portico_host_runner::abi::LogLevel::Info),
        ["probe: vm started"]
    );
}

#[test]
fn header_maps() {
    let (_rt, mut vm, root) = http_vm();
    let ctx = vm.create_http_context(root).unwrap();
    let a = vm
        .on_request_headers(
            ctx,
            headers(
                "headers",
                &[
                    ("x-replaced", "old"),
                    ("x-removed", "1"),
                    ("X-Replaced", "dup"),
                ],
            ),
            true,
        )
        .unwrap();
    assert_eq!(a, Action::Continue);
    let s = vm.stream(ctx).unwrap();
    assert_eq!(header(&s.request_headers, "x-added"), Some("1"));
    assert_eq!(header(&s.request_headers, "x-replaced"), Some("new"));
    assert_eq!(
        s.request_headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("x-replaced"))
            .count(),
        1
    );
    assert_eq!(header(&s.request_headers, "x-removed"), None);
    // 7 headers arrived; the filter saw 7 pairs after its own add/replace/remove (+1 -1 -1 dup).
    assert_eq!(header(&s.request_headers, "x-pairs"), Some("7/6"));
    let done = vm.finish(ctx).unwrap().unwrap();
    assert!(!done.request_edits.is_empty());
    assert!(vm.stream(ctx).is_none());
}

#[test]
fn bodies() {
    let (_rt, mut vm, root) = http_vm();
    let ctx = vm.create_http_context(root).unwrap();
    assert_eq!(
        vm.on_request_headers(ctx, headers("body", &[]), false)
            .unwrap(),
        Action::Continue
    );
    assert_eq!(
        vm.on_request_body(ctx, b"hello ", false).unwrap(),
        Action::Pause
    );
    assert_eq!(
        vm.on_request_body(ctx, b"world", true).unwrap(),
        Action::Continue
    );
    assert_eq!(vm.stream(ctx).unwrap().request_body, b"HELLO WORLD");
    vm.on_response_headers(ctx, vec![(":status".into(), "200".into())], false)
        .unwrap();
    vm.on_response_body(ctx, b"abc", true).unwrap();
    assert_eq!(vm.stream(ctx).unwrap().response_body, b"abc+probe");
    assert_eq!(
        header(&vm.stream(ctx).unwrap().response_headers, "x-probe-seen"),
        Some("body")
    );
}

#[test]
fn http_callouts() {
    let (_rt, mut vm, root) = http_vm();
    let ctx = vm.create_http_context(root).unwrap();
    assert_eq!(
        vm.on_request_headers(ctx, headers("callout", &[]), true)
            .unwrap(),
        Action::Pause
    );
    let call = vm.state().http_calls[0].clone();
    assert_eq!(call.upstream, "auth");
    assert_eq!(header(&call.headers, ":path"), Some("/p?q=1"));
    assert_eq!(call.body, b"check");
    assert_eq!(call.timeout_ms, 500);
    vm.respond_http_call(
        call.token,
        vec![(":status".into(), "204".into())],
        b"fine",
        vec![],
    )
    .unwrap();
    let s = vm.stream(ctx).unwrap();
    assert_eq!(s.continued, [StreamType::HttpRequest]);
    assert_eq!(header(&s.request_headers, "x-callout-status"), Some("204"));
    assert_eq!(header(&s.request_headers, "x-callout-body"), Some("fine"));
    assert!(matches!(
        vm.respond_http_call(999, vec![], b"", vec![]),
        Err(HostError::NoContext(999))
    ));
}

/// `proxy_get_header_map_size` answers Envoy's `HeaderMap::byteSize()` (names and values, no
/// framing) for the stream's own maps and BAD_ARGUMENT for the others and for maps not received
/// yet (trailers in the headers callback); `proxy_get_buffer_status`
/// answers the buffer's length and flags 0, NOT_FOUND for a buffer this callback lacks. Reading
/// bytes past a buffer's end is OK with no data (the SDK's `None`), as in Envoy.
#[test]
fn header_map_size_and_buffer_status() {
    let (_rt, mut vm, root) = http_vm();
    let ctx = vm.create_http_context(root).unwrap();
    let h = headers("sizes", &[("X-Long", "abcdefghij")]);
    let bytes: usize = h.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert_eq!(
        vm.on_request_headers(ctx, h, false).unwrap(),
        Action::Continue
    );
    assert_eq!(
        vm.on_request_body(ctx, b"hello", false).unwrap(),
        Action::Pause
    );
    assert_eq!(
        vm.on_request_body(ctx, b" world", true).unwrap(),
        Action::Continue
    );
    vm.on_response_headers(ctx, vec![(":status".into(), "200".into())], true)
        .unwrap();
    let logs: Vec<String> = vm
        .logs_at(portico_host_runner::abi::LogLevel::Info)
        .into_iter()
        .filter_map(|l| l.strip_prefix("sizes: ").map(str::to_owned))
        .collect();
    assert_eq!(
        logs,
        [
            format!("request headers 0 {bytes}"),
            "request trailers 2 0".to_owned(),
            "callout headers 2 0".to_owned(),
            "map 42 2 0".to_owned(),
            "callout body 1 0 0".to_owned(),
            "buffer 42 2 0 0".to_owned(),
            "request body 5 0 5 0".to_owned(),
            "bytes past the end None".to_owned(),
            "request body 11 0 11 0".to_owned(),
            "bytes past the end None".to_owned(),
            format!("response headers 0 {}", ":status".len() + 3),
        ]
    );
    // In the callout's answer: the body's length; its header map has no size in Envoy.
    let ctx = vm.create_http_context(root).unwrap();
    vm.on_request_headers(ctx, headers("callout", &[]), true)
        .unwrap();
    let token = vm.state().http_calls.last().unwrap().token;
    vm.respond_http_call(
        token,
        vec![(":status".into(), "200".into())],
        b"fine",
        vec![],
    )
    .unwrap();
    let logs = vm.logs_at(portico_host_runner::abi::LogLevel::Info);
    assert!(
        logs.contains(&"callout: body status 0 4 0".to_owned()),
        "{logs:?}"
    );
    assert!(
        logs.contains(&"callout: headers size 2 0".to_owned()),
        "{logs:?}"
    );
}

#[test]
fn grpc_calls() {
    let (_rt, mut vm, root) = http_vm();
    let ctx = vm.create_http_context(root).unwrap();
    assert_eq!(
        vm.on_request_headers(ctx, headers("grpc", &[]), true)
            .unwrap(),
        Action::Pause
    );
    let call = vm.state().grpc_calls[0].clone();
    assert_eq!(
        (
            call.upstream.as_str(),
            call.service.as_str(),
            call.method.as_str()
        ),
        ("grpc-svc", "probe.Check", "Run")
    );
    assert_eq!(call.messages, [(b"hello".to_vec(), true)]);
    assert_eq!(header(&call.metadata, "k"), Some("v"));
    vm.respond_grpc(call.token, vec![], &[b"12345"], vec![], 0, "")
        .unwrap();
    let s = vm.stream(ctx).unwrap();
    assert_eq!(header(&s.request_headers, "x-grpc-status"), Some("0"));
    assert_eq!(header(&s.request_headers, "x-grpc-message-size"), Some("5"));
}

#[test]
fn shared_data_and_queues_span_vms() {
    let runtime = Runtime::new().unwrap();
    let (mut a, root_a) = vm(&runtime, r#"{"kind": "http"}"#);
    let (mut b, root_b) = vm(&runtime, r#"{"kind": "http"}"#);
    for (vm, root) in [(&mut a, root_a), (&mut b, root_b)] {
        let ctx = vm.create_http_context(root).unwrap();
        vm.on_request_headers(ctx, headers("shared", &[(":path", "/x")]), true)
            .unwrap();
    }
    assert_eq!(
        runtime.shared().shared_data("hits").map(|(v, _)| v),
        Some(b"2".to_vec())
    );
    // Both VMs registered "paths" under vm id "probe": one queue, owned by the last registrant.
    assert_eq!(
        runtime
            .shared()
            .queue_items("probe", "paths")
            .map(|q| q.len()),
        Some(2)
    );
    let delivered = a.deliver_queue_ready().unwrap() + b.deliver_queue_ready().unwrap();
    assert_eq!(delivered, 2);
    assert_eq!(runtime.shared().queue_items("probe", "paths"), Some(vec![]));
    assert!(runtime.shared().shared_data("last_path").is_some());
}

#[test]
fn metrics_by_kind() {
    let (rt, mut vm, root) = http_vm();
    for _ in 0..3 {
        let ctx = vm.create_http_context(root).unwrap();
        vm.on_request_headers(ctx, headers("metrics", &[]), true)
            .unwrap();
    }
    let shared = rt.shared();
    assert_eq!(shared.metric("probe_requests_total").unwrap().value, 3);
    assert_eq!(shared.metric("probe_inflight").unwrap().value, 7);
    assert_eq!(
        shared.metric("probe_size_bytes").unwrap().samples,
        [1234, 1234, 1234]
    );
}

#[test]
fn the_calls_kind_makes_exactly_the_listed_host_calls() {
    // What `portico-e2e bench-envoy-instructions --abi-calls` prices, one call per configuration.
    let runtime = Runtime::new().unwrap();
    let (mut vm, root) = vm(
        &runtime,
        r#"{"kind": "calls", "calls": ["header-pairs", "header-value", "set-header", "filter-state", "clear-route-cache", "metric"]}"#,
    );
    let ctx = vm.create_http_context(root).unwrap();
    let a = vm
        .on_request_headers(ctx, headers("ignored", &[]), true)
        .unwrap();
    assert_eq!(a, Action::Continue);
    let s = vm.stream(ctx).unwrap();
    assert_eq!(header(&s.request_headers, "x-probe-call"), Some("1"));
    assert_eq!(s.request_edits.len(), 1);
    assert_eq!(
        s.filter_state
            .iter()
            .map(|(k, v, _)| (k.as_str(), v.as_slice()))
            .collect::<Vec<_>>(),
        [(
            "envoy.network.transport_socket.original_dst_address",
            b"0.0.0.0:0".as_slice()
        )]
    );
    assert_eq!(s.route_cache_cleared, 1);
    assert_eq!(
        runtime.shared().metric("probe_calls_total").unwrap().value,
        1
    );
    // With no calls listed, nothing at all: the pass-through.
    let (mut vm, root) = self::vm(&runtime, r#"{"kind": "calls", "calls": []}"#);
    let ctx = vm.create_http_context(root).unwrap();
    vm.on_request_headers(ctx, headers("ignored", &[]), true)
        .unwrap();
    let s = vm.stream(ctx).unwrap();
    assert!(s.request_edits.is_empty() && s.filter_state.is_empty());
    assert_eq!(s.route_cache_cleared, 0);
}

#[test]
fn ticks_follow_the_clock() {
    let runtime = Runtime::new().unwrap();
    let (mut vm, root) = vm(&runtime, r#"{"kind": "http", "tick_ms": 100}"#);
    assert_eq!(vm.state().roots[&root].tick_period_ms, 100);
    let fired = vm.advance_ms(350).unwrap();
    assert_eq!(fired, [root, root, root]);
    assert_eq!(
        runtime.shared().shared_data("ticks").map(|(v, _)| v),
        Some(b"3".to_vec())
    );
}

#[test]
fn properties_and_local_replies() {
    let (_rt, mut vm, root) = http_vm();
    let ctx = vm.create_http_context(root).unwrap();
    let s = vm.stream_mut(ctx).unwrap();
    s.properties.insert(
        vec!["source".into(), "address".into()],
        b"127.0.60.5:41000".to_vec(),
    );
    s.properties
        .insert(vec!["request".into(), "path".into()], b"/p?q=1".to_vec());
    vm.on_request_headers(ctx, headers("property", &[]), true)
        .unwrap();
    vm.on_response_headers(ctx, vec![(":status".into(), "200".into())], true)
        .unwrap();
    let s = vm.stream(ctx).unwrap();
    assert_eq!(
        header(&s.response_headers, "x-source"),
        Some("127.0.60.5:41000")
    );
    assert_eq!(
        header(&s.response_headers, "x-request-path"),
        Some("/p?q=1")
    );
    assert!(s
        .properties_read
        .contains(&vec!["source".to_owned(), "address".to_owned()]));

    let ctx = vm.create_http_context(root).unwrap();
    assert_eq!(
        vm.on_request_headers(ctx, headers("reply", &[]), true)
            .unwrap(),
        Action::Pause
    );
    let reply = vm.stream(ctx).unwrap().local_response.clone().unwrap();
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (418, &b"short and stout"[..])
    );
    assert_eq!(header(&reply.headers, "x-reply"), Some("probe"));
}

#[test]
fn stream_filters() {
    let runtime = Runtime::new().unwrap();
    let (mut vm, root) = vm(&runtime, r#"{"kind": "stream"}"#);
    let (ctx, action) = vm.create_stream_context(root).unwrap();
    assert_eq!(action, Action::Continue);
    assert_eq!(
        vm.on_downstream_data(ctx, b"cluster-a", false).unwrap(),
        Action::Continue
    );
    assert_eq!(
        vm.stream(ctx).unwrap().filter_state,
        [(
            "envoy.tcp_proxy.cluster".to_owned(),
            b"cluster-a".to_vec(),
            0
        )]
    );
    vm.on_upstream_data(ctx, b"xyz", false).unwrap();
    assert_eq!(vm.stream(ctx).unwrap().upstream_data, b"rewritten");
    let (ctx2, _) = vm.create_stream_context(root).unwrap();
    assert_eq!(
        vm.on_downstream_data(ctx2, b"close", true).unwrap(),
        Action::Pause
    );
    assert_eq!(vm.stream(ctx2).unwrap().closed, [StreamType::Downstream]);
    vm.on_downstream_close(ctx2, PeerType::Remote).unwrap();
    vm.on_upstream_close(ctx, PeerType::Local).unwrap();
    assert_eq!(
        runtime.shared().shared_data("closed").map(|(v, _)| v),
        Some(b"1".to_vec())
    );
}

#[test]
fn a_refused_configuration_is_an_error_with_the_modules_reason() {
    let runtime = Runtime::new().unwrap();
    let mut vm = runtime.start_vm(&probe(&runtime), "probe", b"").unwrap();
    let err = vm.start_plugin("probe", b"{not json").unwrap_err();
    assert!(
        matches!(
            err,
            HostError::Rejected {
                callback: "proxy_on_configure",
                ..
            }
        ),
        "{err}"
    );
    assert!(vm.logs_at(portico_host_runner::abi::LogLevel::Error)[0]
        .starts_with("probe: bad configuration"));
}

fn worker(policy: FailurePolicy, filters: usize) -> Worker {
    let runtime = Runtime::new().unwrap();
    let module = probe(&runtime);
    let specs = (0..filters)
        .map(|i| FilterSpec {
            name: format!("probe-{i}"),
            module: module.clone(),
            code_id: "probe".into(),
            vm_id: "shared-vm".into(),
            root_id: "probe".into(),
            configuration: br#"{"kind": "http"}"#.to_vec(),
            failure_policy: policy,
        })
        .collect();
    Worker::new(runtime, specs).unwrap()
}

/// Sends one request through the chain; returns the status and whether a filter saw it.
fn send(w: &mut Worker, probe: &str) -> (u16, bool) {
    let mut trace = Vec::new();
    let (decoded, ctxs) = w.decode(headers(probe, &[]), b"", &mut trace);
    let response = match decoded {
        Decoded::Forward(_) => Response {
            status: 200,
            headers: vec![],
            body: vec![],
        },
        Decoded::Reply { response, .. } => response,
        Decoded::Paused(f) | Decoded::Reset(f) => panic!("paused or reset by {f}"),
    };
    let r = w.encode(response, &ctxs, &mut trace);
    (r.status, header(&r.headers, "x-probe-seen").is_some())
}

#[test]
fn fail_closed_answers_503_from_the_trap_on() {
    let mut w = worker(FailurePolicy::FailClosed, 1);
    assert_eq!(send(&mut w, "none"), (200, true));
    assert_eq!(send(&mut w, "panic").0, 503);
    assert_eq!(send(&mut w, "none").0, 503);
    assert!(w
        .vm(0)
        .poisoned()
        .unwrap()
        .contains("proxy_on_request_headers"));
}

#[test]
fn fail_open_fails_the_trapping_request_then_skips_the_filter() {
    let mut w = worker(FailurePolicy::FailOpen, 1);
    assert_eq!(send(&mut w, "panic").0, 503);
    assert_eq!(send(&mut w, "none"), (200, false));
}

#[test]
fn fail_reload_fails_the_trapping_request_then_rebuilds_the_vm() {
    let mut w = worker(FailurePolicy::FailReload, 1);
    assert_eq!(send(&mut w, "panic").0, 503);
    assert_eq!(send(&mut w, "none"), (200, true));
    assert!(w.vm(0).poisoned().is_none());
}

#[test]
fn a_trap_poisons_every_plugin_of_the_vm() {
    let mut w = worker(FailurePolicy::FailClosed, 2);
    assert_eq!(send(&mut w, "panic").0, 503);
    // The second filter shares the VM: it fails too, though it never trapped itself.
    assert!(w.vm(1).poisoned().is_some());
    assert_eq!(send(&mut w, "none").0, 503);
}

#[test]
fn local_replies_run_the_encoders() {
    let mut w = worker(FailurePolicy::FailClosed, 1);
    assert_eq!(send(&mut w, "reply"), (418, true));
}

/// A listener chain as Envoy runs it: network filters on the connection, then HTTP filters on
/// the request.
#[test]
fn network_then_http_filters() {
    use portico_host_runner::envoy::Connected;
    let runtime = Runtime::new().unwrap();
    let module = probe(&runtime);
    let spec = |name: &str, kind: &str| FilterSpec {
        name: name.into(),
        module: module.clone(),
        code_id: "probe".into(),
        vm_id: format!("vm-{kind}"),
        root_id: "probe".into(),
        configuration: format!(r#"{{"kind": "{kind}"}}"#).into_bytes(),
        failure_policy: FailurePolicy::FailClosed,
    };
    let mut w = Worker::with_chain(
        runtime.clone(),
        vec![spec("tcp", "stream")],
        vec![spec("http", "http")],
    )
    .unwrap();
    let mut trace = Vec::new();
    let Connected::Open {
        filter_state,
        contexts,
    } = w.connect(b"cluster-a", &mut trace)
    else {
        panic!("{trace:?}")
    };
    assert_eq!(
        filter_state,
        [("envoy.tcp_proxy.cluster".to_owned(), b"cluster-a".to_vec())]
    );
    assert_eq!(
        send(&mut w, "headers"),
        (200, true),
        "the HTTP filter runs after the network filter"
    );
    w.disconnect(&contexts);
    assert_eq!(
        runtime.shared().shared_data("closed").map(|(v, _)| v),
        Some(b"1".to_vec())
    );
    assert_eq!(
        w.connect(b"close please", &mut trace),
        Connected::Closed("tcp".into())
    );
}

/// Runs one request with a body through the chain and a response with a body back.
fn exchange(
    w: &mut Worker,
    request: Vec<(String, String)>,
    body: &[u8],
    upstream_body: &[u8],
) -> (Decoded, Response) {
    let mut trace = Vec::new();
    let (decoded, ctxs) = w.decode(request, body, &mut trace);
    let response = match &decoded {
        Decoded::Forward(_) => Response {
            status: 200,
            headers: vec![("content-length".into(), upstream_body.len().to_string())],
            body: upstream_body.to_vec(),
        },
        Decoded::Reply { response, .. } => response.clone(),
        Decoded::Paused(f) | Decoded::Reset(f) => panic!("paused or reset by {f}: {trace:?}"),
    };
    let r = w.encode(response, &ctxs, &mut trace);
    (decoded, r)
}

/// As Envoy: the body goes through the request body callbacks and the response body through the
/// response body callbacks; the body the last filter left goes upstream.
#[test]
fn the_chain_passes_bodies_as_envoy_does() {
    let mut w = worker(FailurePolicy::FailClosed, 1);
    let (decoded, response) = exchange(&mut w, headers("body", &[]), b"hello", b"abc");
    assert!(matches!(decoded, Decoded::Forward(_)), "{decoded:?}");
    assert_eq!(w.forwarded_body, b"HELLO");
    assert_eq!(response.body, b"abc+probe");
    assert_eq!(header(&response.headers, "x-probe-seen"), Some("body"));
}

/// As Envoy (proxy-wasm turns a Pause on the headers into StopAllIterationAndWatermark): a
/// filter that paused on the headers gets the body only once it resumes.
#[test]
fn a_pause_on_the_headers_holds_the_body_until_the_filter_resumes() {
    let body_logs = |w: &Worker| {
        w.vm(0)
            .logs_at(LogLevel::Debug)
            .into_iter()
            .filter(|l| l.starts_with("probe: request body"))
            .collect::<Vec<_>>()
    };
    let mut w = worker(FailurePolicy::FailClosed, 1);
    let mut trace = Vec::new();
    let (decoded, _) = w.decode(headers("callout", &[]), b"payload", &mut trace);
    assert_eq!(decoded, Decoded::Paused("probe-0".into()));
    assert!(body_logs(&w).is_empty(), "{:?}", body_logs(&w));

    let mut w = worker(FailurePolicy::FailClosed, 1);
    w.answers.http.insert(
        "auth".into(),
        Response {
            status: 200,
            headers: vec![],
            body: vec![],
        },
    );
    let (decoded, _) = exchange(&mut w, headers("callout", &[]), b"payload", b"");
    assert!(matches!(decoded, Decoded::Forward(_)), "{decoded:?}");
    assert_eq!(body_logs(&w), ["probe: request body 7 bytes, end true"]);
    assert_eq!(w.forwarded_body, b"payload");
}

/// Callouts to a cluster with an answer are answered as soon as they are made; status 0 is a
/// failed callout (no headers, no body), as Envoy reports a reset.
#[test]
fn the_chain_answers_callouts() {
    let mut w = worker(FailurePolicy::FailClosed, 1);
    w.answers.http.insert(
        "auth".into(),
        Response {
            status: 204,
            headers: vec![("x-a".into(), "b".into())],
            body: b"fine".to_vec(),
        },
    );
    let (decoded, _) = exchange(&mut w, headers("callout", &[]), b"", b"");
    let Decoded::Forward(h) = decoded else {
        panic!("{decoded:?}")
    };
    assert_eq!(header(&h, "x-callout-status"), Some("204"));
    assert_eq!(header(&h, "x-callout-body"), Some("fine"));
    w.answers.http.insert("auth".into(), Response::default());
    let (decoded, _) = exchange(&mut w, headers("callout", &[]), b"", b"");
    let Decoded::Forward(h) = decoded else {
        panic!("{decoded:?}")
    };
    assert_eq!(header(&h, "x-callout-status"), Some(""));
    assert_eq!(header(&h, "x-callout-body"), Some(""));
    assert!(w.vm(0).state().http_calls.is_empty());
}

/// Envoy's unary gRPC client: a success delivers the message (status 0); a failure only the
/// status; an OK close without a message is INTERNAL.
#[test]
fn the_chain_answers_grpc_calls_as_envoys_unary_client() {
    let mut w = worker(FailurePolicy::FailClosed, 1);
    for (answer, status, size) in [
        ((0, Some(b"12345".to_vec())), "0", "5"),
        ((0, None), "13", "0"),
        ((14, None), "14", "0"),
    ] {
        w.answers.grpc.insert("grpc-svc".into(), answer);
        let (decoded, _) = exchange(&mut w, headers("grpc", &[]), b"", b"");
        let Decoded::Forward(h) = decoded else {
            panic!("{decoded:?}")
        };
        assert_eq!(header(&h, "x-grpc-status"), Some(status));
        assert_eq!(header(&h, "x-grpc-message-size"), Some(size));
    }
}

/// A local reply carries `content-length` (and `content-type` for a body); to a gRPC request it
/// is a trailers-only gRPC answer: 200, the status mapped from the HTTP one, the body as
/// `grpc-message`.
#[test]
fn local_replies_as_envoy_builds_them() {
    let mut w = worker(FailurePolicy::FailClosed, 1);
    let (_, r) = exchange(&mut w, headers("reply", &[]), b"", b"");
    assert_eq!(r.status, 418);
    assert_eq!(header(&r.headers, "content-length"), Some("15"));
    assert_eq!(header(&r.headers, "content-type"), Some("text/plain"));
    assert_eq!(r.body, b"short and stout");
    let grpc = headers("reply", &[("content-type", "application/grpc")]);
    let (_, r) = exchange(&mut w, grpc, b"", b"");
    assert_eq!(r.status, 200);
    assert_eq!(header(&r.headers, "content-type"), Some("application/grpc"));
    assert_eq!(header(&r.headers, "grpc-status"), Some("2"));
    assert_eq!(header(&r.headers, "grpc-message"), Some("short and stout"));
    assert_eq!(header(&r.headers, "x-reply"), Some("probe"));
    assert!(r.body.is_empty());
}

/// Measured on Envoy 1.40 (ingress-nginx's CORS preflight answer): a 204 local reply reaches the
/// client without `content-type` or `content-length`, whatever the filter set, and without a body.
#[test]
fn a_204_local_reply_has_no_content_headers() {
    let reply = portico_host_runner::state::LocalResponse {
        status: 204,
        details: String::new(),
        body: b"ignored".to_vec(),
        headers: vec![
            ("Content-Type".into(), "text/plain charset=UTF-8".into()),
            ("access-control-allow-origin".into(), "*".into()),
        ],
        grpc_status: -1,
    };
    let r = portico_host_runner::envoy::local_reply_response(&reply, &vec![]);
    assert_eq!(r.status, 204);
    assert_eq!(
        r.headers,
        vec![("access-control-allow-origin".to_owned(), "*".to_owned())]
    );
    assert!(r.body.is_empty());
}

/// The connection's properties are readable from `proxy_on_new_connection` on.
#[test]
fn connection_properties_from_the_first_callback() {
    let runtime = Runtime::new().unwrap();
    let spec = FilterSpec {
        name: "tcp".into(),
        module: probe(&runtime),
        code_id: "probe".into(),
        vm_id: "vm".into(),
        root_id: "probe".into(),
        configuration: br#"{"kind": "stream"}"#.to_vec(),
        failure_policy: FailurePolicy::FailClosed,
    };
    let mut w = Worker::with_chain(runtime, vec![spec], vec![]).unwrap();
    w.connection.insert(
        vec!["source".into(), "address".into()],
        b"10.0.0.7:5000".to_vec(),
    );
    let mut trace = Vec::new();
    w.connect(b"c", &mut trace);
    assert!(w
        .vm(0)
        .logs_at(LogLevel::Info)
        .contains(&r#"probe: new connection from Some("10.0.0.7:5000")"#.to_owned()));
}
