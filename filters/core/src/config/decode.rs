//! [`Decode`] for the routing configuration: the same names, defaults, tags and unknown-field
//! refusals as the types' serde attributes (`config::tests` decodes with both and compares).

use super::*;
use crate::json::decode::{external, fields, unit, unknown_variant, Decode, Error, Fields, Value};
use crate::tls::select::{
    Certificate, CertificateSource, Chain, ChainAction, ClientValidation, Family, HostCheck,
    PassthroughBackend, PeerHeader, SniPattern, SniRule, Terminate, TlsTable, TlsVersion,
};

/// `Decode` for structs: each field with its JSON name and whether it is `req`uired (an
/// `Option` may still be absent), `def`aulted when absent, or `or` a default function — the
/// serde attributes' meaning (`deny_unknown_fields` on all: any other member is an error).
macro_rules! structs {
    ($($t:ident { $($field:ident: $name:literal $how:ident $($default:ident)?,)* })*) => {$(
        impl Decode for $t {
            fn decode(v: &Value) -> Result<Self, Error> {
                let f = fields(v, Some(&[$($name),*]))?;
                Ok($t { $($field: structs!(@get f $name $how $($default)?),)* })
            }
        }
    )*};
    (@get $f:ident $name:literal req) => { $f.req($name)? };
    (@get $f:ident $name:literal def) => { $f.def($name)? };
    (@get $f:ident $name:literal or $default:ident) => { $f.or($name, $default)? };
}

structs! {
    RoutingConfig {
        api_version: "apiVersion" req,
        generation: "generation" req,
        forward: "forward" def,
        port: "port" or default_port,
        virtual_hosts: "virtualHosts" def,
        default_backend: "defaultBackend" def,
        backends: "backends" def,
        passthrough: "passthrough" def,
        host_defaults_only: "hostDefaultsOnly" def,
        tls: "tls" def,
        unknown_host_status: "unknownHostStatus" def,
    }
    VirtualHost {
        name: "name" req,
        hosts: "hosts" req,
        wildcard: "wildcard" def,
        order: "order" def,
        routes: "routes" def,
        default_backend: "defaultBackend" def,
    }
    Route {
        name: "name" req,
        path: "path" req,
        headers: "headers" def,
        query: "query" def,
        method: "method" def,
        sources: "sources" def,
        client_ranges: "clientRanges" def,
        upstream: "upstream" def,
        cors: "cors" def,
        action: "action" req,
        request_headers: "requestHeaders" def,
        response_headers: "responseHeaders" def,
        abort: "abort" def,
        delay: "delay" def,
        mirrors: "mirrors" def,
        client_certificate: "clientCertificate" def,
    }
    UpstreamPolicy {
        timeout_ms: "timeoutMs" def,
        per_try_timeout_ms: "perTryTimeoutMs" def,
        retries: "retries" def,
        retry_on: "retryOn" def,
        retriable_status_codes: "retriableStatusCodes" def,
    }
    ClientRanges {
        allow: "allow" def,
        deny: "deny" def,
    }
    Abort {
        status: "status" req,
        percent: "percent" req,
    }
    Delay {
        millis: "millis" req,
        percent: "percent" req,
    }
    Mirror {
        backend: "backend" req,
        percent: "percent" req,
    }
    HeaderMatch {
        name: "name" req,
        value: "value" req,
        invert: "invert" def,
    }
    QueryMatch {
        name: "name" req,
        value: "value" req,
    }
    WeightedBackend {
        backend: "backend" req,
        weight: "weight" req,
        filters: "filters" def,
    }
    BackendFilters {
        request_headers: "requestHeaders" def,
        response_headers: "responseHeaders" def,
        rewrite: "rewrite" def,
        host: "host" def,
        redirect: "redirect" def,
        mirrors: "mirrors" def,
    }
    Rewrite {
        host: "host" def,
        path: "path" def,
    }
    HeaderMods {
        set: "set" def,
        add: "add" def,
        remove: "remove" def,
    }
    Backend {
        cluster: "cluster" req,
        endpoints: "endpoints" def,
        lb: "lb" def,
        original_destination: "originalDestination" def,
    }
    TlsTable {
        family: "family" req,
        chains: "chains" req,
        rules: "rules" req,
        default_chain: "defaultChain" def,
        response_headers: "responseHeaders" def,
    }
    Certificate {
        sds: "sds" req,
        source: "source" req,
    }
    ClientValidation {
        ca_sds: "caSds" req,
        required: "required" req,
        subject_alt_names: "subjectAltNames" def,
        accept_untrusted: "acceptUntrusted" def,
        max_depth: "maxDepth" def,
    }
    Terminate {
        certificate: "certificate" req,
        min_version: "minVersion" req,
        max_version: "maxVersion" req,
        cipher_suites: "cipherSuites" def,
        client: "client" def,
        request_headers: "requestHeaders" def,
    }
    PassthroughBackend {
        backend: "backend" req,
        cluster: "cluster" req,
        weight: "weight" req,
    }
    Chain {
        name: "name" req,
        origin: "origin" req,
        action: "action" req,
        hosts: "hosts" def,
        host_check: "hostCheck" def,
    }
    SniRule {
        pattern: "pattern" req,
        chain: "chain" req,
    }
    ClientCertificate {
        denied: "denied" def,
        required: "required" def,
        error_page: "errorPage" def,
        match_subject: "matchSubject" def,
        headers: "headers" def,
    }
    Cors {
        allow_origins: "allowOrigins" def,
        allow_methods: "allowMethods" def,
        allow_headers: "allowHeaders" def,
        expose_headers: "exposeHeaders" def,
        max_age: "maxAge" def,
        allow_credentials: "allowCredentials" def,
        nginx: "nginx" def,
        ignore_unmatched_preflights: "ignoreUnmatchedPreflights" def,
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

/// The content of the externally tagged newtype variant `name`.
fn external_newtype<T: Decode>(name: &str, content: Option<&Value>) -> Result<T, Error> {
    match content {
        Some(c) => T::decode(c).map_err(|e| e.in_field(name)),
        None => Err(Error::new(
            "invalid type: unit variant, expected newtype variant",
        )),
    }
}

impl Decode for SniPattern {
    fn decode(v: &Value) -> Result<Self, Error> {
        let (name, content) = external(v)?;
        let text = || external_newtype::<String>(name, content);
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
        let text = || external_newtype::<String>(name, content);
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
