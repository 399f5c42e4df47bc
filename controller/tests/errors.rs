//! Bad Gateway API and Istio objects: each is reported with the object and the field at fault,
//! and the rest still translates.

use portico_controller::objects::Object;
use portico_controller::source::documents;
use portico_controller::translate::{translate, Options, Severity, Translation};

fn run(yaml: &str) -> Translation {
    let objects: Vec<Object> = documents(yaml)
        .unwrap()
        .into_iter()
        .map(|v| Object::from_value(v).unwrap())
        .collect();
    translate(&objects, &Options::default())
}

const BASE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: portico
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: https, port: 443, protocol: HTTPS}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: igw, namespace: default}
spec:
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
"#;

fn messages(t: &Translation) -> Vec<String> {
    t.errors.iter().map(ToString::to_string).collect()
}

#[test]
fn gateway_api_errors_name_the_field() {
    let cases = [
        (
            "rules: [{timeouts: {request: 1 second}, backendRefs: [{name: web, port: 80}]}]",
            "HTTPRoute default/r: spec.rules[0].timeouts.request: invalid: \"1 second\" is not a duration",
        ),
        (
            "rules: [{timeouts: {request: 1s, backendRequest: 2s}, backendRefs: [{name: web, port: 80}]}]",
            "HTTPRoute default/r: spec.rules[0].timeouts.backendRequest: invalid: must not be longer than timeouts.request",
        ),
        (
            "rules: [{matches: [{path: {type: RegularExpression, value: \"(\"}}], backendRefs: [{name: web, port: 80}]}]",
            "HTTPRoute default/r: spec.rules[0].matches[0].path.value: invalid: regex does not compile",
        ),
        (
            "rules: [{matches: [{headers: [{type: Glob, name: a, value: b}]}], backendRefs: [{name: web, port: 80}]}]",
            "HTTPRoute default/r: spec.rules[0].matches[0].headers[0].type: invalid: type \"Glob\" is not Exact or RegularExpression",
        ),
        (
            "rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: web, port: 80}, percent: 120}}], backendRefs: [{name: web, port: 80}]}]",
            "HTTPRoute default/r: spec.rules[0].filters[0].requestMirror.percent: invalid: 120 is over 100",
        ),
        (
            "rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: web, port: 80}, fraction: {numerator: 3, denominator: 2}}}], backendRefs: [{name: web, port: 80}]}]",
            "HTTPRoute default/r: spec.rules[0].filters[0].requestMirror.fraction: invalid: needs 0 <= numerator <= denominator",
        ),
        (
            "rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: gone, port: 80}}}], backendRefs: [{name: web, port: 80}]}]",
            "HTTPRoute default/r: spec.rules[0].filters[0].requestMirror.backendRef.name: Service default/gone not found",
        ),
        (
            "rules: [{filters: [{type: RequestRedirect, requestRedirect: {statusCode: 305}}]}]",
            "HTTPRoute default/r: spec.rules[0].filters[0].requestRedirect.statusCode: invalid: 305 is not 301, 302, 303, 307 or 308",
        ),
        (
            "rules: [{backendRefs: [{name: web, port: 80, filters: [{type: ExtensionRef, extensionRef: {group: x, kind: y, name: z}}]}]}]",
            "HTTPRoute default/r: spec.rules[0].backendRefs[0].filters[0].extensionRef: not supported: ExtensionRef filters",
        ),
        (
            "rules: [{backendRefs: [{name: missing, port: 80}]}]",
            "HTTPRoute default/r: spec.rules[0].backendRefs[0].name: Service default/missing not found",
        ),
    ];
    for (rules, want) in cases {
        let t = run(&format!(
            "{BASE}---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: default}}\nspec:\n  parentRefs: [{{name: gw}}]\n  {rules}\n"
        ));
        let msgs = messages(&t);
        assert!(
            msgs.iter().any(|m| m.starts_with(want)),
            "{want}\n  got {msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.starts_with("Gateway default/gw: spec.listeners[1].tls.certificateRefs: invalid: an HTTPS listener needs a certificate (InvalidCertificateRef)")),
            "{msgs:?}"
        );
        assert!(
            t.snapshot.routing(80).is_some(),
            "the HTTP listener still serves"
        );
    }
}

#[test]
fn mesh_route_to_a_missing_service_is_reported() {
    let t = run(&format!(
        "{BASE}---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: m, namespace: default}}\nspec:\n  parentRefs: [{{group: \"\", kind: Service, name: nope}}]\n  rules: [{{backendRefs: [{{name: web, port: 80}}]}}]\n"
    ));
    assert!(
        messages(&t).contains(
            &"HTTPRoute default/m: spec.parentRefs[0].name: Service default/nope not found"
                .to_owned()
        ),
        "{:?}",
        messages(&t)
    );
}

#[test]
fn istio_errors_name_the_field() {
    let cases = [
        (
            "http: [{mirror: {host: nowhere}, route: [{destination: {host: web}}]}]",
            "VirtualService default/vs: spec.http[0].mirror: invalid: Service default/nowhere not found",
        ),
        (
            "http: [{mirrorPercentage: {value: 5}, route: [{destination: {host: web}}]}]",
            "VirtualService default/vs: spec.http[0].mirrorPercentage: invalid: set without mirror",
        ),
        (
            "http: [{fault: {delay: {fixedDelay: 1 minute}}, route: [{destination: {host: web}}]}]",
            "VirtualService default/vs: spec.http[0].fault.delay.fixedDelay: invalid: \"1 minute\" is not a duration",
        ),
        (
            "http: [{fault: {delay: {exponentialDelay: 1s}}, route: [{destination: {host: web}}]}]",
            "VirtualService default/vs: spec.http[0].fault.delay.exponentialDelay: not supported: exponential delays",
        ),
        (
            "http: [{match: [{uri: {exact: /a, prefix: /b}}], route: [{destination: {host: web}}]}]",
            "VirtualService default/vs: spec.http[0].match[0].uri: invalid: exactly one of exact, prefix and regex",
        ),
        (
            "http: [{route: [{destination: {host: web, subset: v9}}]}]",
            "VirtualService default/vs: spec.http[0].route[0].destination: invalid: no DestinationRule defines subset \"v9\"",
        ),
        (
            "http: [{route: [{destination: {host: api.external.com}}]}]",
            "VirtualService default/vs: spec.http[0].route[0].destination: invalid: \"api.external.com\" is neither a Kubernetes Service nor a ServiceEntry host",
        ),
    ];
    for (http, want) in cases {
        let t = run(&format!(
            "{BASE}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: vs, namespace: default}}\nspec:\n  hosts: [\"*\"]\n  gateways: [igw]\n  {http}\n"
        ));
        let msgs = messages(&t);
        assert!(
            msgs.iter().any(|m| m.starts_with(want)),
            "{want}\n  got {msgs:?}"
        );
    }
    let t = run(&format!(
        "{BASE}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: vs, namespace: default}}\nspec:\n  hosts: [\"*\"]\n  gateways: [igw]\n  http: [{{retries: {{attempts: 1, retryRemoteLocalities: true}}, route: [{{destination: {{host: web}}}}]}}]\n"
    ));
    assert!(
        messages(&t).contains(&"VirtualService default/vs: spec.http[0].retries.retryRemoteLocalities: ignored: not applied (Envoy's default)".to_owned()),
        "{:?}",
        messages(&t)
    );
    assert_eq!(
        t.snapshot.routing(8080).unwrap().virtual_hosts.len(),
        1,
        "the VirtualService still serves"
    );
    let t = run(&format!(
        "{BASE}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: dr, namespace: default}}\nspec:\n  host: web\n  trafficPolicy:\n    loadBalancer: {{simple: PASSTHROUGH}}\n    connectionPool: {{tcp: {{maxConnections: 1}}}}\n"
    ));
    let msgs = messages(&t);
    assert!(msgs.contains(&"DestinationRule default/dr: spec.trafficPolicy.loadBalancer: ignored: loadBalancer.simple \"PASSTHROUGH\" is not supported; round robin is used".to_owned()), "{msgs:?}");
    assert!(msgs.contains(&"DestinationRule default/dr: spec.trafficPolicy.connectionPool: ignored: not implemented".to_owned()), "{msgs:?}");
}

#[test]
fn nginx_annotation_errors_name_the_annotation() {
    let ingress = |annotations: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: i, namespace: default, annotations: {{{annotations}}}}}\nspec: {{rules: [{{host: a.test, http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}}}]}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: default}}\nspec: {{ports: [{{name: http, port: 80}}]}}\n"
        )
    };
    // A parser that returns the validation error refuses the Ingress (sslpassthrough/main.go).
    let t = run(&ingress(
        "nginx.ingress.kubernetes.io/ssl-passthrough: \"maybe\"",
    ));
    assert_eq!(messages(&t), ["Ingress default/i: metadata.annotations[nginx.ingress.kubernetes.io/ssl-passthrough]: invalid: \"maybe\" is not a boolean (strconv.ParseBool)"]);
    assert!(
        t.snapshot.routing(80).unwrap().virtual_hosts.is_empty(),
        "the bad Ingress is left out"
    );
    // One that catches it uses its default and keeps the Ingress (rewrite/main.go).
    let t = run(&ingress(
        "nginx.ingress.kubernetes.io/ssl-redirect: \"maybe\"",
    ));
    assert_eq!(messages(&t), ["Ingress default/i: metadata.annotations[nginx.ingress.kubernetes.io/ssl-redirect]: invalid: \"maybe\" is not a boolean (strconv.ParseBool); true is used"]);
    assert_eq!(t.errors[0].severity(), Severity::Warning);
    assert_eq!(t.snapshot.routing(80).unwrap().virtual_hosts.len(), 1);
    // A Critical-risk annotation refuses the Ingress, once, not also as an ignored one.
    let t = run(&ingress(
        "nginx.ingress.kubernetes.io/configuration-snippet: \"more_set_headers 'A: b';\"",
    ));
    assert_eq!(messages(&t), ["Ingress default/i: metadata.annotations[nginx.ingress.kubernetes.io/configuration-snippet]: invalid: a Critical-risk annotation: ingress-nginx's default annotations-risk-level (High) refuses the Ingress"]);
    assert!(t.snapshot.routing(80).unwrap().virtual_hosts.is_empty());
    let t = run(&ingress("nginx.ingress.kubernetes.io/proxy-body-size: 8m"));
    assert_eq!(messages(&t), ["Ingress default/i: metadata.annotations[nginx.ingress.kubernetes.io/proxy-body-size]: ignored: this ingress-nginx annotation is not implemented"]);
    assert_eq!(
        t.snapshot.routing(80).unwrap().virtual_hosts.len(),
        1,
        "an ignored annotation keeps the Ingress"
    );
    let t = run(&ingress(
        "nginx.ingress.kubernetes.io/allowlist-source-range: \"10.0.0.0/33, 10.1.0.0/16\"",
    ));
    assert!(messages(&t)[0].starts_with("Ingress default/i: metadata.annotations[nginx.ingress.kubernetes.io/allowlist-source-range]: invalid: \"10.0.0.0/33\" is not an IP address or CIDR range"), "{:?}", messages(&t));
    assert_eq!(
        t.errors[0].severity(),
        Severity::Warning,
        "the location answers 503"
    );
    // An invalid alias is ignored and the Ingress kept: invalid, but a warning.
    let t = run(&ingress(
        "nginx.ingress.kubernetes.io/server-alias: \"Bad_Name.test\"",
    ));
    assert_eq!(messages(&t), ["Ingress default/i: metadata.annotations[nginx.ingress.kubernetes.io/server-alias]: invalid: \"bad_name.test\" must be a lower-case DNS name, optionally prefixed by '*.'"]);
    assert_eq!(t.errors[0].severity(), Severity::Warning);
    assert!(!t.errors[0].object_dropped());
    assert_eq!(t.snapshot.routing(80).unwrap().virtual_hosts.len(), 1);
    assert_eq!(t.errors[0].metric_label(), "invalid");
    let t = run(&ingress("nginx.ingress.kubernetes.io/use-regex: \"true\", nginx.ingress.kubernetes.io/canary-by-header-pattern: \"(\""));
    assert!(
        messages(&t).is_empty(),
        "a canary pattern on a non-canary Ingress is not read: {:?}",
        messages(&t)
    );
}

/// ingress-nginx's parsers: redirect/redirect.go, ipallowlist/main.go, upstreamhashby/main.go.
#[test]
fn nginx_redirects_ranges_and_hashes_read_as_ingress_nginx_parses_them() {
    use portico_core::config::{HashKey, LoadBalancer, RouteAction};
    let ingress = |annotations: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: i, namespace: default, annotations: {{{annotations}}}}}\nspec: {{rules: [{{host: a.test, http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}}}]}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: default}}\nspec: {{ports: [{{name: http, port: 80}}]}}\n"
        )
    };
    let a = |k: &str, v: &str| format!("nginx.ingress.kubernetes.io/{k}: \"{v}\"");
    let action = |t: &Translation| {
        let c = t.snapshot.routing(80).unwrap();
        c.virtual_hosts[0].routes[0].action.clone()
    };
    let redirect = |t: &Translation| match action(t) {
        RouteAction::Redirect(r) => (r.url.unwrap(), r.status.unwrap()),
        other => panic!("{other:?}"),
    };
    // Temporal before permanent; codes out of range fall back to the default (a warning).
    let t = run(&ingress(&format!(
        "{}, {}",
        a("permanent-redirect", "http://p.test/x"),
        a("temporal-redirect", "http://t.test/y")
    )));
    assert_eq!(redirect(&t), ("http://t.test/y".into(), 302));
    let t = run(&ingress(&format!(
        "{}, {}",
        a("temporal-redirect", "http://t.test/"),
        a("temporal-redirect-code", "308")
    )));
    assert_eq!(
        redirect(&t),
        ("http://t.test/".into(), 302),
        "temporal: 300-307"
    );
    assert_eq!(t.errors[0].severity(), Severity::Warning);
    let t = run(&ingress(&format!(
        "{}, {}",
        a("permanent-redirect", "http://p.test/"),
        a("permanent-redirect-code", "418")
    )));
    assert_eq!(redirect(&t), ("http://p.test/".into(), 301));
    assert_eq!(messages(&t), ["Ingress default/i: metadata.annotations[nginx.ingress.kubernetes.io/permanent-redirect-code]: invalid: \"418\" is not a redirect code from 300 to 308; 301 is used"]);
    // A code that is no number, or a URL with nginx variables, refuses the Ingress.
    for bad in [
        format!(
            "{}, {}",
            a("permanent-redirect", "http://p.test/"),
            a("permanent-redirect-code", "x")
        ),
        a("permanent-redirect", "https://p.test$request_uri"),
    ] {
        let t = run(&ingress(&bad));
        assert_eq!(t.errors[0].severity(), Severity::Error, "{bad}");
        assert!(t.snapshot.routing(80).unwrap().virtual_hosts.is_empty());
    }
    // An allow list that does not parse: the Ingress is kept and its paths answer 503.
    let t = run(&ingress(&a(
        "allowlist-source-range",
        "10.0.0.0/8,nonsense",
    )));
    assert_eq!(t.errors[0].severity(), Severity::Warning);
    assert!(matches!(
        action(&t),
        RouteAction::Respond { status: 503, .. }
    ));
    // upstream-hash-by: an nginx expression; other characters refuse the Ingress; a variable
    // Portico has no value for is reported.
    let t = run(&ingress(&a("upstream-hash-by", "$request_uri$host")));
    assert!(messages(&t).is_empty(), "{:?}", messages(&t));
    let lbs: Vec<LoadBalancer> = t
        .snapshot
        .routing(80)
        .unwrap()
        .backends
        .values()
        .map(|b| b.lb.clone())
        .collect();
    assert_eq!(
        lbs,
        [LoadBalancer::ConsistentHash {
            key: HashKey::Nginx("$request_uri$host".into())
        }]
    );
    let t = run(&ingress(&a("upstream-hash-by", "$request_uri:x")));
    assert_eq!(t.errors[0].severity(), Severity::Error);
    let t = run(&ingress(&a("upstream-hash-by", "${server_name}x")));
    assert_eq!(messages(&t), ["Ingress default/i: metadata.annotations[nginx.ingress.kubernetes.io/upstream-hash-by]: ignored: $server_name has no value in Portico (hashed as empty)"]);
}

/// Bad ServiceEntries are refused as Istio's validation refuses them, bad Sidecar settings are
/// reported and fall back, each naming the object and field; the good entry still makes the
/// egress registry.
#[test]
fn egress_objects_errors_name_the_field() {
    let se = |name: &str, spec: &str| {
        format!("---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: default}}\nspec: {spec}\n")
    };
    let yaml = [
        se("good", "{hosts: [good.example.com], ports: [{number: 80, name: http, protocol: HTTP}]}"),
        se("dns-wild", "{hosts: ['*.example.com'], resolution: DNS, ports: [{number: 80, name: http, protocol: HTTP}]}"),
        se("none-endpoints", "{hosts: [a.example.com], resolution: NONE, endpoints: [{address: 127.0.0.1}], ports: [{number: 80, name: http}]}"),
        se("cidr-dns", "{hosts: [b.example.com], resolution: DNS, addresses: [10.0.0.0/8], ports: [{number: 80, name: http}]}"),
        se("bad-address", "{hosts: [c.example.com], addresses: [not-an-ip], ports: [{number: 80, name: http}]}"),
        se("twice", "{hosts: [d.example.com], ports: [{number: 80, name: a}, {number: 80, name: b}]}"),
        se("endpoint-port", "{hosts: [e.example.com], resolution: STATIC, endpoints: [{address: 127.0.0.1, ports: {nope: 81}}], ports: [{number: 80, name: http}]}"),
        se("multi-tcp", "{hosts: [f.example.com, g.example.com], resolution: STATIC, endpoints: [{address: 127.0.0.1}], ports: [{number: 5432, name: tcp, protocol: TCP}]}"),
        se("star", "{hosts: ['*'], ports: [{number: 80, name: http}]}"),
        "---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s, namespace: shop}\nspec: {egress: [{hosts: [no-slash, ./*]}], outboundTrafficPolicy: {mode: SOMETIMES}}\n".to_owned(),
    ]
    .concat();
    let objects: Vec<Object> = documents(&yaml)
        .unwrap()
        .into_iter()
        .map(|v| Object::from_value(v).unwrap())
        .collect();
    let t = translate(
        &objects,
        &Options {
            mesh: true,
            ..Options::default()
        },
    );
    let msgs = messages(&t);
    for want in [
        "ServiceEntry default/dns-wild: spec.resolution: ",
        "ServiceEntry default/none-endpoints: spec.endpoints: ",
        "ServiceEntry default/cidr-dns: spec.addresses[0]: ",
        "ServiceEntry default/bad-address: spec.addresses[0]: ",
        "ServiceEntry default/twice: spec.ports[1].number: ",
        "ServiceEntry default/endpoint-port: spec.endpoints[0].ports: ",
        "ServiceEntry default/multi-tcp: spec.ports[0].protocol: ",
        "ServiceEntry default/star: spec.hosts: ",
        "Sidecar shop/s: spec.egress[0].hosts[0]: ",
        "Sidecar shop/s: spec.outboundTrafficPolicy.mode: ",
    ] {
        assert!(
            msgs.iter().any(|m| m.starts_with(want)),
            "{want}\n  got {msgs:#?}"
        );
    }
    let egress = t.snapshot.egress.expect("the mesh has an egress config");
    let hosts: Vec<&str> = egress
        .config
        .scopes
        .last()
        .unwrap()
        .entries
        .iter()
        .flat_map(|e| e.hosts.iter().map(String::as_str))
        .collect();
    assert_eq!(
        hosts,
        ["good.example.com"],
        "only the good entry is in the registry"
    );
}

/// What a cluster refuses before an object exists (the Gateway API CRDs' schema, Istio's
/// validation, object metadata) is refused by name, the object left out and the others served —
/// instead of reaching the routing filter, which would refuse the whole port's configuration.
#[test]
fn objects_a_cluster_refuses_are_left_out_by_name() {
    let route = |hostnames: &str| {
        format!(
            "{BASE}---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: bad, namespace: default}}\nspec: {{parentRefs: [{{name: gw}}], hostnames: [{hostnames}], rules: [{{backendRefs: [{{name: web, port: 80}}]}}]}}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: good, namespace: default}}\nspec: {{parentRefs: [{{name: gw}}], hostnames: [good.example.com], rules: [{{backendRefs: [{{name: web, port: 80}}]}}]}}\n"
        )
    };
    let t = run(&route("\"Shop.Example.com\""));
    assert!(
        messages(&t).iter().any(|m| m.starts_with("HTTPRoute default/bad: spec.hostnames[0]: invalid: \"Shop.Example.com\" is not a hostname")),
        "{:?}",
        messages(&t)
    );
    let routing = t.snapshot.routing(80).unwrap();
    let hosts: Vec<&String> = routing
        .virtual_hosts
        .iter()
        .flat_map(|v| &v.hosts)
        .collect();
    assert!(
        hosts.contains(&&"good.example.com".to_owned()),
        "the other route is served"
    );
    assert!(!hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case("shop.example.com")));
    portico_core::Router::try_from(routing.clone()).expect("the filter takes the configuration");

    let vs = |spec: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: igw, namespace: default}}\nspec: {{servers: [{{port: {{number: 8080, name: http, protocol: HTTP}}, hosts: [\"*\"]}}]}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: default}}\nspec: {{ports: [{{name: http, port: 80}}]}}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: vs, namespace: default}}\nspec:\n  gateways: [igw]\n  {spec}\n"
        )
    };
    for (spec, want) in [
        (
            "hosts: [\"a b.example.com\"]\n  http: [{route: [{destination: {host: web}}]}]",
            "VirtualService default/vs: spec.hosts[0]: invalid: \"a b.example.com\" is not a host name",
        ),
        (
            "hosts: [\"*\"]\n  http: [{rewrite: {uriRegexRewrite: {match: \"(unclosed\", rewrite: /x}}, route: [{destination: {host: web}}]}]",
            "VirtualService default/vs: spec.http[0].rewrite.uriRegexRewrite.match: invalid: \"(unclosed\" does not compile",
        ),
    ] {
        let t = run(&vs(spec));
        assert!(
            messages(&t).iter().any(|m| m.starts_with(want)),
            "{want}\n  got {:?}",
            messages(&t)
        );
        let routing = t.snapshot.routing(8080).unwrap();
        assert!(routing.virtual_hosts.iter().all(|v| v.routes.is_empty()) || routing.virtual_hosts.is_empty());
        portico_core::Router::try_from(routing.clone()).expect("the filter takes the configuration");
    }

    let t = run(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: shop, namespace: Shop}\nspec: {rules: [{host: a.test, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]}\n",
    );
    assert!(
        messages(&t).iter().any(|m| m.starts_with(
            "Ingress Shop/shop: metadata.namespace: invalid: \"Shop\" is not a DNS-1123 label"
        )),
        "{:?}",
        messages(&t)
    );
}
