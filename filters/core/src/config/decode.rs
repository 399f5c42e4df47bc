//! [`Decode`] for the routing configuration: the same names, defaults, tags and unknown-field
//! refusals as the types' serde attributes (`config::tests` decodes with both and compares).

use super::*;
use crate::json::decode::{external, fields, unit, unknown_variant, Decode, Error, Fields, Value};
use crate::tls::select::{
    Certificate, CertificateSource, Chain, ChainAction, ClientValidation, Family, HostCheck,
    PassthroughBackend, PeerHeader, SniPattern, SniRule, Terminate, TlsTable, TlsVersion,
};

impl Decode for RoutingConfig {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(
            v,
            Some(&[
                "apiVersion",
                "generation",
                "forward",
                "port",
                "virtualHosts",
                "defaultBackend",
                "backends",
                "passthrough",
                "hostDefaultsOnly",
                "tls",
                "unknownHostStatus",
            ]),
        )?;
        Ok(RoutingConfig {
            api_version: f.req("apiVersion")?,
            generation: f.req("generation")?,
            forward: f.def("forward")?,
            port: f.or("port", default_port)?,
            virtual_hosts: f.def("virtualHosts")?,
            default_backend: f.def("defaultBackend")?,
            backends: f.def("backends")?,
            passthrough: f.def("passthrough")?,
            host_defaults_only: f.def("hostDefaultsOnly")?,
            tls: f.def("tls")?,
            unknown_host_status: f.def("unknownHostStatus")?,
        })
    }
}

impl Decode for ForwardMode {
    fn decode(v: &Value) -> Result<Self, Error> {
        unit(
            v,
            &[
                ("endpoint", ForwardMode::Endpoint),
                ("cluster", ForwardMode::Cluster),
            ],
        )
    }
}

impl Decode for VirtualHost {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(
            v,
            Some(&[
                "name",
                "hosts",
                "wildcard",
                "order",
                "routes",
                "defaultBackend",
            ]),
        )?;
        Ok(VirtualHost {
            name: f.req("name")?,
            hosts: f.req("hosts")?,
            wildcard: f.def("wildcard")?,
            order: f.def("order")?,
            routes: f.def("routes")?,
            default_backend: f.def("defaultBackend")?,
        })
    }
}

impl Decode for RouteOrder {
    fn decode(v: &Value) -> Result<Self, Error> {
        unit(
            v,
            &[
                ("longestPath", RouteOrder::LongestPath),
                ("listed", RouteOrder::Listed),
            ],
        )
    }
}

impl Decode for WildcardMode {
    fn decode(v: &Value) -> Result<Self, Error> {
        unit(
            v,
            &[
                ("singleLabel", WildcardMode::SingleLabel),
                ("multiLabel", WildcardMode::MultiLabel),
            ],
        )
    }
}

impl Decode for Route {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(
            v,
            Some(&[
                "name",
                "path",
                "headers",
                "query",
                "method",
                "sources",
                "clientRanges",
                "upstream",
                "cors",
                "action",
                "requestHeaders",
                "responseHeaders",
                "abort",
                "delay",
                "mirrors",
                "clientCertificate",
            ]),
        )?;
        Ok(Route {
            name: f.req("name")?,
            path: f.req("path")?,
            headers: f.def("headers")?,
            query: f.def("query")?,
            method: f.def("method")?,
            sources: f.def("sources")?,
            client_ranges: f.def("clientRanges")?,
            upstream: f.def("upstream")?,
            cors: f.def("cors")?,
            action: f.req("action")?,
            request_headers: f.def("requestHeaders")?,
            response_headers: f.def("responseHeaders")?,
            abort: f.def("abort")?,
            delay: f.def("delay")?,
            mirrors: f.def("mirrors")?,
            client_certificate: f.def("clientCertificate")?,
        })
    }
}

impl Decode for ClientCertificate {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(
            v,
            Some(&["denied", "required", "errorPage", "matchSubject", "headers"]),
        )?;
        Ok(ClientCertificate {
            denied: f.def("denied")?,
            required: f.def("required")?,
            error_page: f.def("errorPage")?,
            match_subject: f.def("matchSubject")?,
            headers: f.def("headers")?,
        })
    }
}

impl Decode for Cors {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(
            v,
            Some(&[
                "allowOrigins",
                "allowMethods",
                "allowHeaders",
                "exposeHeaders",
                "maxAge",
                "allowCredentials",
                "nginx",
                "ignoreUnmatchedPreflights",
            ]),
        )?;
        Ok(Cors {
            allow_origins: f.def("allowOrigins")?,
            allow_methods: f.def("allowMethods")?,
            allow_headers: f.def("allowHeaders")?,
            expose_headers: f.def("exposeHeaders")?,
            max_age: f.def("maxAge")?,
            allow_credentials: f.def("allowCredentials")?,
            nginx: f.def("nginx")?,
            ignore_unmatched_preflights: f.def("ignoreUnmatchedPreflights")?,
        })
    }
}

impl Decode for UpstreamPolicy {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(
            v,
            Some(&[
                "timeoutMs",
                "perTryTimeoutMs",
                "retries",
                "retryOn",
                "retriableStatusCodes",
            ]),
        )?;
        Ok(UpstreamPolicy {
            timeout_ms: f.def("timeoutMs")?,
            per_try_timeout_ms: f.def("perTryTimeoutMs")?,
            retries: f.def("retries")?,
            retry_on: f.def("retryOn")?,
            retriable_status_codes: f.def("retriableStatusCodes")?,
        })
    }
}

impl Decode for ClientRanges {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(v, Some(&["allow", "deny"]))?;
        Ok(ClientRanges {
            allow: f.def("allow")?,
            deny: f.def("deny")?,
        })
    }
}

impl Decode for Abort {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(v, Some(&["status", "percent"]))?;
        Ok(Abort {
            status: f.req("status")?,
            percent: f.req("percent")?,
        })
    }
}

impl Decode for Delay {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(v, Some(&["millis", "percent"]))?;
        Ok(Delay {
            millis: f.req("millis")?,
            percent: f.req("percent")?,
        })
    }
}

impl Decode for Mirror {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(v, Some(&["backend", "percent"]))?;
        Ok(Mirror {
            backend: f.req("backend")?,
            percent: f.req("percent")?,
        })
    }
}

/// An adjacently tagged enum's object (`{"type": …, CONTENT: …}`): its variant name and content
/// (absent or null for a unit variant).
fn adjacent<'v>(v: &'v Value<'v>, content: &str) -> Result<(String, Fields<'v>), Error> {
    let f = fields(v, Some(&["type", content]))?;
    let kind: String = f.req("type")?;
    Ok((kind, f))
}

/// The content of an adjacently tagged newtype variant.
fn newtype<T: Decode>(f: &Fields, content: &str) -> Result<T, Error> {
    f.req(content)
}

/// An adjacently tagged unit variant: its content, if any, is null.
fn unit_content(f: &Fields, content: &str) -> Result<(), Error> {
    match f.get(content) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => Err(Error::new(format!(
            "invalid type: {}, expected unit",
            match v {
                Value::Object(_) => "map",
                Value::Array(_) => "sequence",
                _ => "a value",
            }
        ))
        .in_field(content)),
    }
}

impl Decode for PathMatch {
    fn decode(v: &Value) -> Result<Self, Error> {
        let (kind, f) = adjacent(v, "value")?;
        match kind.as_str() {
            "exact" => Ok(PathMatch::Exact(newtype(&f, "value")?)),
            "prefix" => Ok(PathMatch::Prefix(newtype(&f, "value")?)),
            "regex" => Ok(PathMatch::Regex(newtype(&f, "value")?)),
            other => Err(
                unknown_variant(other, ["exact", "prefix", "regex"].into_iter()).in_field("type"),
            ),
        }
    }
}

impl Decode for HeaderMatch {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(v, Some(&["name", "value", "invert"]))?;
        Ok(HeaderMatch {
            name: f.req("name")?,
            value: f.req("value")?,
            invert: f.def("invert")?,
        })
    }
}

impl Decode for QueryMatch {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(v, Some(&["name", "value"]))?;
        Ok(QueryMatch {
            name: f.req("name")?,
            value: f.req("value")?,
        })
    }
}

impl Decode for StringMatch {
    fn decode(v: &Value) -> Result<Self, Error> {
        let (kind, f) = adjacent(v, "value")?;
        match kind.as_str() {
            "exact" => Ok(StringMatch::Exact(newtype(&f, "value")?)),
            "prefix" => Ok(StringMatch::Prefix(newtype(&f, "value")?)),
            "regex" => Ok(StringMatch::Regex(newtype(&f, "value")?)),
            "present" => unit_content(&f, "value").map(|()| StringMatch::Present),
            other => Err(unknown_variant(
                other,
                ["exact", "prefix", "regex", "present"].into_iter(),
            )
            .in_field("type")),
        }
    }
}

/// An internally tagged enum's variant name (`{"type": …, …}`).
fn tag(v: &Value) -> Result<String, Error> {
    fields(v, None)?.req("type")
}

impl Decode for RouteAction {
    fn decode(v: &Value) -> Result<Self, Error> {
        match tag(v)?.as_str() {
            "forward" => {
                let f = fields(v, Some(&["type", "backends", "rewrite"]))?;
                Ok(RouteAction::Forward {
                    backends: f.req("backends")?,
                    rewrite: f.def("rewrite")?,
                })
            }
            "redirect" => Ok(RouteAction::Redirect(redirect(v, true)?)),
            "respond" => {
                let f = fields(v, Some(&["type", "status", "body"]))?;
                Ok(RouteAction::Respond {
                    status: f.req("status")?,
                    body: f.def("body")?,
                })
            }
            other => Err(
                unknown_variant(other, ["forward", "redirect", "respond"].into_iter())
                    .in_field("type"),
            ),
        }
    }
}

impl Decode for WeightedBackend {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(v, Some(&["backend", "weight", "filters"]))?;
        Ok(WeightedBackend {
            backend: f.req("backend")?,
            weight: f.req("weight")?,
            filters: f.def("filters")?,
        })
    }
}

impl Decode for BackendFilters {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(
            v,
            Some(&[
                "requestHeaders",
                "responseHeaders",
                "rewrite",
                "host",
                "redirect",
                "mirrors",
            ]),
        )?;
        Ok(BackendFilters {
            request_headers: f.def("requestHeaders")?,
            response_headers: f.def("responseHeaders")?,
            rewrite: f.def("rewrite")?,
            host: f.def("host")?,
            redirect: f.def("redirect")?,
            mirrors: f.def("mirrors")?,
        })
    }
}

impl Decode for Rewrite {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(v, Some(&["host", "path"]))?;
        Ok(Rewrite {
            host: f.def("host")?,
            path: f.def("path")?,
        })
    }
}

impl Decode for PathRewrite {
    fn decode(v: &Value) -> Result<Self, Error> {
        let (kind, f) = adjacent(v, "value")?;
        match kind.as_str() {
            "full" => Ok(PathRewrite::Full(newtype(&f, "value")?)),
            "prefix" => Ok(PathRewrite::Prefix(newtype(&f, "value")?)),
            "regex" => {
                let Some(content) = f.get("value") else {
                    return Err(Error::new("missing field `value`"));
                };
                let r = fields(content, Some(&["regex", "substitution", "global"]))
                    .map_err(|e| e.in_field("value"))?;
                let at = |e: Error| e.in_field("value");
                Ok(PathRewrite::Regex {
                    regex: r.req("regex").map_err(at)?,
                    substitution: r.req("substitution").map_err(at)?,
                    global: r.def("global").map_err(at)?,
                })
            }
            other => Err(
                unknown_variant(other, ["full", "prefix", "regex"].into_iter()).in_field("type"),
            ),
        }
    }
}

/// A [`Redirect`]'s fields, with the action's `type` among them when `tagged`.
fn redirect(v: &Value, tagged: bool) -> Result<Redirect, Error> {
    const NAMES: [&str; 10] = [
        "url",
        "scheme",
        "host",
        "port",
        "path",
        "status",
        "stripTrailingSlash",
        "explicitPort",
        "dropQuery",
        "type",
    ];
    let f = fields(v, Some(if tagged { &NAMES } else { &NAMES[..9] }))?;
    Ok(Redirect {
        url: f.def("url")?,
        scheme: f.def("scheme")?,
        host: f.def("host")?,
        port: f.def("port")?,
        path: f.def("path")?,
        status: f.def("status")?,
        strip_trailing_slash: f.def("stripTrailingSlash")?,
        explicit_port: f.def("explicitPort")?,
        drop_query: f.def("dropQuery")?,
    })
}

impl Decode for Redirect {
    fn decode(v: &Value) -> Result<Self, Error> {
        redirect(v, false)
    }
}

impl Decode for HeaderMods {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(v, Some(&["set", "add", "remove"]))?;
        Ok(HeaderMods {
            set: f.def("set")?,
            add: f.def("add")?,
            remove: f.def("remove")?,
        })
    }
}

impl Decode for Backend {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(
            v,
            Some(&["cluster", "endpoints", "lb", "originalDestination"]),
        )?;
        Ok(Backend {
            cluster: f.req("cluster")?,
            endpoints: f.def("endpoints")?,
            lb: f.def("lb")?,
            original_destination: f.def("originalDestination")?,
        })
    }
}

impl Decode for LoadBalancer {
    fn decode(v: &Value) -> Result<Self, Error> {
        // serde reads an internally tagged unit variant's other members and ignores them.
        match tag(v)?.as_str() {
            "roundRobin" => Ok(LoadBalancer::RoundRobin),
            "random" => Ok(LoadBalancer::Random),
            "leastRequest" => Ok(LoadBalancer::LeastRequest),
            "consistentHash" => {
                let f = fields(v, Some(&["type", "key"]))?;
                Ok(LoadBalancer::ConsistentHash { key: f.req("key")? })
            }
            other => Err(unknown_variant(
                other,
                ["roundRobin", "random", "leastRequest", "consistentHash"].into_iter(),
            )
            .in_field("type")),
        }
    }
}

impl Decode for HashKey {
    fn decode(v: &Value) -> Result<Self, Error> {
        let (kind, f) = adjacent(v, "name")?;
        match kind.as_str() {
            "header" => Ok(HashKey::Header(newtype(&f, "name")?)),
            "cookie" => Ok(HashKey::Cookie(newtype(&f, "name")?)),
            "sourceIp" => unit_content(&f, "name").map(|()| HashKey::SourceIp),
            "queryParameter" => Ok(HashKey::QueryParameter(newtype(&f, "name")?)),
            "path" => unit_content(&f, "name").map(|()| HashKey::Path),
            "nginx" => Ok(HashKey::Nginx(newtype(&f, "name")?)),
            other => Err(unknown_variant(
                other,
                [
                    "header",
                    "cookie",
                    "sourceIp",
                    "queryParameter",
                    "path",
                    "nginx",
                ]
                .into_iter(),
            )
            .in_field("type")),
        }
    }
}

// The TLS table a routing configuration may carry.

impl Decode for TlsTable {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(
            v,
            Some(&[
                "family",
                "chains",
                "rules",
                "defaultChain",
                "responseHeaders",
            ]),
        )?;
        Ok(TlsTable {
            family: f.req("family")?,
            chains: f.req("chains")?,
            rules: f.req("rules")?,
            default_chain: f.def("defaultChain")?,
            response_headers: f.def("responseHeaders")?,
        })
    }
}

impl Decode for Family {
    fn decode(v: &Value) -> Result<Self, Error> {
        unit(
            v,
            &[
                ("ingressNginx", Family::IngressNginx),
                ("istio", Family::Istio),
                ("gatewayApi", Family::GatewayApi),
            ],
        )
    }
}

impl Decode for SniPattern {
    fn decode(v: &Value) -> Result<Self, Error> {
        let (name, content) = external(v)?;
        let text = || match content {
            Some(c) => String::decode(c).map_err(|e| e.in_field(name)),
            None => Err(Error::new(
                "invalid type: unit variant, expected newtype variant",
            )),
        };
        match name {
            "exact" => Ok(SniPattern::Exact(text()?)),
            "oneLabel" => Ok(SniPattern::OneLabel(text()?)),
            "anyLabels" => Ok(SniPattern::AnyLabels(text()?)),
            other => Err(unknown_variant(
                other,
                ["exact", "oneLabel", "anyLabels"].into_iter(),
            )),
        }
    }
}

impl Decode for TlsVersion {
    fn decode(v: &Value) -> Result<Self, Error> {
        unit(
            v,
            &[
                ("TLSv1_0", TlsVersion::V1_0),
                ("TLSv1_1", TlsVersion::V1_1),
                ("TLSv1_2", TlsVersion::V1_2),
                ("TLSv1_3", TlsVersion::V1_3),
            ],
        )
    }
}

impl Decode for CertificateSource {
    fn decode(v: &Value) -> Result<Self, Error> {
        let (name, content) = external(v)?;
        let text = || match content {
            Some(c) => String::decode(c).map_err(|e| e.in_field(name)),
            None => Err(Error::new(
                "invalid type: unit variant, expected newtype variant",
            )),
        };
        match name {
            "secret" => Ok(CertificateSource::Secret(text()?)),
            "default" => Ok(CertificateSource::Default(text()?)),
            "fake" => match content {
                None | Some(Value::Null) => Ok(CertificateSource::Fake),
                Some(c) => Err(Error::invalid_type(c, "unit").in_field(name)),
            },
            other => Err(unknown_variant(
                other,
                ["secret", "default", "fake"].into_iter(),
            )),
        }
    }
}

impl Decode for Certificate {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(v, Some(&["sds", "source"]))?;
        Ok(Certificate {
            sds: f.req("sds")?,
            source: f.req("source")?,
        })
    }
}

impl Decode for ClientValidation {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(
            v,
            Some(&[
                "caSds",
                "required",
                "subjectAltNames",
                "acceptUntrusted",
                "maxDepth",
            ]),
        )?;
        Ok(ClientValidation {
            ca_sds: f.req("caSds")?,
            required: f.req("required")?,
            subject_alt_names: f.def("subjectAltNames")?,
            accept_untrusted: f.def("acceptUntrusted")?,
            max_depth: f.def("maxDepth")?,
        })
    }
}

impl Decode for Terminate {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(
            v,
            Some(&[
                "certificate",
                "minVersion",
                "maxVersion",
                "cipherSuites",
                "client",
                "requestHeaders",
            ]),
        )?;
        Ok(Terminate {
            certificate: f.req("certificate")?,
            min_version: f.req("minVersion")?,
            max_version: f.req("maxVersion")?,
            cipher_suites: f.def("cipherSuites")?,
            client: f.def("client")?,
            request_headers: f.def("requestHeaders")?,
        })
    }
}

impl Decode for PeerHeader {
    fn decode(v: &Value) -> Result<Self, Error> {
        unit(
            v,
            &[
                ("issuer", PeerHeader::Issuer),
                ("certificate", PeerHeader::Certificate),
            ],
        )
    }
}

impl Decode for ChainAction {
    fn decode(v: &Value) -> Result<Self, Error> {
        let (name, content) = external(v)?;
        let Some(content) = content else {
            return Err(Error::new(format!(
                "invalid type: unit variant, expected a variant with content: `{name}`"
            )));
        };
        let inner = |e: Error| e.in_field(name);
        match name {
            "terminate" => Terminate::decode(content)
                .map(ChainAction::Terminate)
                .map_err(inner),
            // Struct variants of an enum without `deny_unknown_fields`: other members ignored.
            "passthrough" => {
                let f = fields(content, None).map_err(inner)?;
                Ok(ChainAction::Passthrough {
                    backends: f.req("backends").map_err(inner)?,
                })
            }
            "refuse" => {
                let f = fields(content, None).map_err(inner)?;
                Ok(ChainAction::Refuse {
                    reason: f.req("reason").map_err(inner)?,
                })
            }
            other => Err(unknown_variant(
                other,
                ["terminate", "passthrough", "refuse"].into_iter(),
            )),
        }
    }
}

impl Decode for PassthroughBackend {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(v, Some(&["backend", "cluster", "weight"]))?;
        Ok(PassthroughBackend {
            backend: f.req("backend")?,
            cluster: f.req("cluster")?,
            weight: f.req("weight")?,
        })
    }
}

impl Decode for Chain {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(v, Some(&["name", "origin", "action", "hosts", "hostCheck"]))?;
        Ok(Chain {
            name: f.req("name")?,
            origin: f.req("origin")?,
            action: f.req("action")?,
            hosts: f.def("hosts")?,
            host_check: f.def("hostCheck")?,
        })
    }
}

impl Decode for HostCheck {
    fn decode(v: &Value) -> Result<Self, Error> {
        unit(
            v,
            &[
                ("server", HostCheck::Server),
                ("listener", HostCheck::Listener),
            ],
        )
    }
}

impl Decode for SniRule {
    fn decode(v: &Value) -> Result<Self, Error> {
        let f = fields(v, Some(&["pattern", "chain"]))?;
        Ok(SniRule {
            pattern: f.req("pattern")?,
            chain: f.req("chain")?,
        })
    }
}
