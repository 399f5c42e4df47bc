use super::*;

fn objects(yaml: &str) -> Vec<Object> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| {
            let v: Value = serde::Deserialize::deserialize(d).unwrap();
            Object::from_value(v).unwrap()
        })
        .collect()
}

fn kinds(c: &Conversion) -> Vec<String> {
    c.objects
        .iter()
        .map(|o| {
            format!(
                "{} {}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {ports: [{name: http, port: 80, targetPort: 8080}]}\n";

#[test]
fn an_ingress_becomes_a_gateway_and_a_route_per_port() {
    let c = convert(
        &objects(&format!(
            "{SERVICE}---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: web, namespace: shop}}\nspec:\n  rules:\n  - host: shop.example.com\n    http:\n      paths:\n      - {{path: /cart, pathType: Prefix, backend: {{service: {{name: web, port: {{name: http}}}}}}}}\n      - {{path: /exact, pathType: Exact, backend: {{service: {{name: web, port: {{number: 8080}}}}}}}}\n"
        )),
        &ConvertOptions::default(),
    );
    assert_eq!(
        kinds(&c),
        [
            "Gateway default/portico",
            "HTTPRoute shop/web-shop.example.com-http"
        ]
    );
    let route = &c.objects[1];
    assert_eq!(route["spec"]["hostnames"], json!(["shop.example.com"]));
    assert_eq!(
        route["spec"]["parentRefs"],
        json!([{"group": GROUP, "kind": "Gateway", "name": "portico", "namespace": "default", "sectionName": "http"}])
    );
    let rules = &route["spec"]["rules"];
    assert_eq!(
        rules[0]["matches"][0]["path"],
        json!({"type": "PathPrefix", "value": "/cart"})
    );
    // A port named, or given by its targetPort, is the Service port's number.
    assert_eq!(
        rules[0]["backendRefs"],
        json!([{"name": "web", "port": 80}])
    );
    assert_eq!(
        rules[1]["backendRefs"],
        json!([{"name": "web", "port": 80}])
    );
    assert_eq!(
        rules[1]["matches"][0]["path"],
        json!({"type": "Exact", "value": "/exact"})
    );
    // Without a certificate, HTTPS is the one difference.
    assert_eq!(c.differences.len(), 1, "{:?}", c.differences);
    assert!(c.differences[0].covers("shop.example.com", true));
    assert!(!c.differences[0].covers("shop.example.com", false));
}

#[test]
fn annotations_without_an_equivalent_are_named_and_refused_ingresses_left_out() {
    let c = convert(
        &objects(&format!(
            "{SERVICE}---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n  annotations: {{nginx.ingress.kubernetes.io/allowlist-source-range: 10.0.0.0/8, nginx.ingress.kubernetes.io/proxy-body-size: 8m}}\nspec:\n  rules:\n  - host: a.example.com\n    http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: snippet\n  namespace: shop\n  annotations: {{nginx.ingress.kubernetes.io/configuration-snippet: 'return 200;'}}\nspec:\n  rules:\n  - host: b.example.com\n    http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}\n"
        )),
        &ConvertOptions::default(),
    );
    let fields: Vec<String> = c.differences.iter().map(|d| d.field.clone()).collect();
    assert!(
        fields.contains(&annotation("allowlist-source-range")),
        "{fields:?}"
    );
    assert!(
        fields.contains(&annotation("proxy-body-size")),
        "{fields:?}"
    );
    let allow = c
        .differences
        .iter()
        .find(|d| d.field == annotation("allowlist-source-range"))
        .unwrap();
    assert!(allow.covers("A.example.com", false) && !allow.covers("b.example.com", false));
    assert_eq!(c.left_out.len(), 1);
    assert_eq!(c.left_out[0].object.name, "snippet");
    assert!(!kinds(&c).iter().any(|k| k.contains("snippet")));
    let yaml = to_yaml(&c);
    assert!(yaml.contains("#   Ingress shop/web metadata.annotations[nginx.ingress.kubernetes.io/allowlist-source-range]: client address ranges"), "{yaml}");
    assert!(yaml.contains("# Not converted"), "{yaml}");
}

#[test]
fn tls_hosts_get_listeners_grants_redirects_and_hsts() {
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: shop-tls, namespace: shop}\ntype: kubernetes.io/tls\ndata: {tls.crt: '', tls.key: ''}\n";
    let c = convert(
        &objects(&format!(
            "{SERVICE}---\n{secret}---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: web, namespace: shop}}\nspec:\n  tls: [{{hosts: [a.example.com], secretName: shop-tls}}]\n  rules:\n  - host: a.example.com\n    http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}\n"
        )),
        &ConvertOptions::default(),
    );
    // The Secret does not hold a certificate: ingress-nginx serves the default one, so there is
    // no listener for it; but plain HTTP still redirects (the host has a certificate entry).
    let http = c
        .objects
        .iter()
        .find(|o| o["metadata"]["name"] == "web-a.example.com-http")
        .unwrap();
    assert_eq!(
        http["spec"]["rules"][0]["filters"],
        json!([{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 308}}])
    );
    assert!(http["spec"]["rules"][0].get("backendRefs").is_none());
    assert!(c
        .differences
        .iter()
        .any(|d| d.field == annotation("ssl-redirect")));
}

#[test]
fn ssl_passthrough_hosts_get_a_passthrough_listener_and_a_tls_route() {
    let c = convert(
        &objects(&format!(
            "{SERVICE}---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: pass, namespace: shop, annotations: {{nginx.ingress.kubernetes.io/ssl-passthrough: 'true'}}}}\nspec:\n  rules:\n  - host: tls.example.com\n    http:\n      paths:\n      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{name: http}}}}}}}}\n  - host: '*.example.com'\n    http:\n      paths:\n      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}\n  - host: nopath.example.com\n    http:\n      paths:\n      - {{path: /x, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}\n"
        )),
        &ConvertOptions::default(),
    );
    let gateway = &c.objects[0];
    let listener = gateway["spec"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["protocol"] == "TLS")
        .unwrap();
    assert_eq!(listener["name"], "tls-passthrough-tls.example.com");
    assert_eq!(listener["port"], 443);
    assert_eq!(listener["hostname"], "tls.example.com");
    assert_eq!(listener["tls"], json!({"mode": "Passthrough"}));
    // Only the exact host with a `/` path: ingress-nginx's proxy matches the SNI exactly.
    let routes: Vec<&Value> = c
        .objects
        .iter()
        .filter(|o| o["kind"] == "TLSRoute")
        .collect();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0]["metadata"]["namespace"], "shop");
    assert_eq!(
        routes[0]["spec"],
        json!({"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "portico",
                               "namespace": "default", "sectionName": "tls-passthrough-tls.example.com"}],
               "hostnames": ["tls.example.com"],
               "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]})
    );
    assert!(!c
        .differences
        .iter()
        .any(|d| d.to_string().contains("ssl-passthrough")));
}
