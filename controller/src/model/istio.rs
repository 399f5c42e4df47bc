//! `networking.istio.io` (v1, v1beta1, v1alpha3): Gateway, VirtualService and DestinationRule,
//! as serde types. What they mean is `translate::istio`'s business.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::meta::ObjectMeta;

/// Istio Gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioGateway {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: IstioGatewaySpec,
}

/// Istio Gateway spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioGatewaySpec {
    /// Servers.
    #[serde(default)]
    pub servers: Vec<Server>,
    /// Workload selector (not interpreted: this gateway is the one selected).
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
}

/// A server.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Server {
    /// Port.
    pub port: ServerPort,
    /// Hosts (`[namespace/]host`).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// TLS settings.
    #[serde(default)]
    pub tls: Option<ServerTls>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Bind address (not interpreted).
    #[serde(default)]
    pub bind: Option<String>,
    /// Default endpoint (not interpreted).
    #[serde(default)]
    pub default_endpoint: Option<String>,
}

/// A server's `tls` (Istio's `ServerTLSSettings`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTls {
    /// On an HTTP server: answer every request with a 301 to HTTPS.
    #[serde(default)]
    pub https_redirect: Option<bool>,
    /// `PASSTHROUGH` (the proto's default), `SIMPLE`, `MUTUAL`, `OPTIONAL_MUTUAL`,
    /// `AUTO_PASSTHROUGH`, `ISTIO_MUTUAL`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Secret (in the gateway's namespace) holding the key pair.
    #[serde(default)]
    pub credential_name: Option<String>,
    /// Several Secrets (an RSA and an ECDSA pair).
    #[serde(default)]
    pub credential_names: Vec<String>,
    /// Secret holding the client CA (default: `<credentialName>-cacert`).
    #[serde(default)]
    pub ca_cert_credential_name: Option<String>,
    /// Certificate file mounted in the gateway.
    #[serde(default)]
    pub server_certificate: Option<String>,
    /// Private key file mounted in the gateway.
    #[serde(default)]
    pub private_key: Option<String>,
    /// Client CA file mounted in the gateway.
    #[serde(default)]
    pub ca_certificates: Option<String>,
    /// CRL file.
    #[serde(default)]
    pub ca_crl: Option<String>,
    /// Inline key pairs.
    #[serde(default)]
    pub tls_certificates: Option<Value>,
    /// A client certificate must carry one of these SANs.
    #[serde(default)]
    pub subject_alt_names: Vec<String>,
    /// Accepted SPKI hashes of client certificates.
    #[serde(default)]
    pub verify_certificate_spki: Vec<String>,
    /// Accepted hashes of client certificates.
    #[serde(default)]
    pub verify_certificate_hash: Vec<String>,
    /// `TLS_AUTO`, `TLSV1_0` … `TLSV1_3`.
    #[serde(default)]
    pub min_protocol_version: Option<String>,
    /// `TLS_AUTO`, `TLSV1_0` … `TLSV1_3`.
    #[serde(default)]
    pub max_protocol_version: Option<String>,
    /// Cipher suites (OpenSSL names).
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    /// Skip client certificate verification.
    #[serde(default)]
    pub insecure_skip_verify: Option<bool>,
}

/// A server port.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerPort {
    /// Number.
    pub number: u16,
    /// Protocol.
    pub protocol: String,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Target port (not interpreted).
    #[serde(default)]
    pub target_port: Option<u16>,
}

/// VirtualService.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualService {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: VirtualServiceSpec,
}

/// VirtualService spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    /// Hosts.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Gateways.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// HTTP routes.
    #[serde(default)]
    pub http: Vec<HttpRoute>,
    /// TLS routes (PASSTHROUGH servers, by SNI).
    #[serde(default)]
    pub tls: Vec<TlsRoute>,
    /// TCP routes (not supported).
    #[serde(default)]
    pub tcp: Option<Value>,
    /// Export scope (not interpreted).
    #[serde(default)]
    pub export_to: Option<Value>,
}

/// A TLS route: SNI matches and weighted destinations.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsRoute {
    /// Match conditions (any).
    #[serde(rename = "match", default)]
    pub matches: Vec<TlsMatch>,
    /// Destinations.
    #[serde(default)]
    pub route: Vec<RouteDestination>,
}

/// A TLS match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsMatch {
    /// SNI names (each a subset of the VirtualService's hosts).
    #[serde(default)]
    pub sni_hosts: Vec<String>,
    /// Destination port (any when absent).
    #[serde(default)]
    pub port: Option<u16>,
    /// Gateways the match applies to (the VirtualService's when absent).
    #[serde(default)]
    pub gateways: Vec<String>,
    /// Destination IP ranges (sidecars).
    #[serde(default)]
    pub destination_subnets: Vec<String>,
    /// Client workload labels (sidecars).
    #[serde(default)]
    pub source_labels: std::collections::BTreeMap<String, String>,
    /// Client namespace (sidecars).
    #[serde(default)]
    pub source_namespace: Option<String>,
}

/// An HTTP route.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Match conditions (any).
    #[serde(rename = "match", default)]
    pub matches: Vec<HttpMatch>,
    /// Destinations.
    #[serde(default)]
    pub route: Vec<RouteDestination>,
    /// Redirect.
    #[serde(default)]
    pub redirect: Option<HttpRedirect>,
    /// Direct response.
    #[serde(default)]
    pub direct_response: Option<DirectResponse>,
    /// Rewrite.
    #[serde(default)]
    pub rewrite: Option<HttpRewrite>,
    /// Header changes.
    #[serde(default)]
    pub headers: Option<Headers>,
    /// Fault injection.
    #[serde(default)]
    pub fault: Option<Fault>,
    /// Request timeout (`0s`: none).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Retry policy.
    #[serde(default)]
    pub retries: Option<HttpRetry>,
    /// Mirror destination.
    #[serde(default)]
    pub mirror: Option<Destination>,
    /// Share of requests mirrored to `mirror` (100 when absent).
    #[serde(default)]
    pub mirror_percentage: Option<Percent>,
    /// Deprecated integer form of `mirrorPercentage`.
    #[serde(default)]
    pub mirror_percent: Option<u32>,
    /// Several mirrors, each with its own share.
    #[serde(default)]
    pub mirrors: Vec<MirrorPolicy>,
    /// CORS.
    #[serde(default)]
    pub cors_policy: Option<CorsPolicy>,
}

/// A match block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatch {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// URI.
    #[serde(default)]
    pub uri: Option<StringMatchSpec>,
    /// Scheme.
    #[serde(default)]
    pub scheme: Option<StringMatchSpec>,
    /// Method.
    #[serde(default)]
    pub method: Option<StringMatchSpec>,
    /// Authority.
    #[serde(default)]
    pub authority: Option<StringMatchSpec>,
    /// Headers.
    #[serde(default)]
    pub headers: BTreeMap<String, StringMatchSpec>,
    /// Headers that must not match.
    #[serde(default)]
    pub without_headers: BTreeMap<String, StringMatchSpec>,
    /// Query parameters.
    #[serde(default)]
    pub query_params: BTreeMap<String, StringMatchSpec>,
    /// Port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Case-insensitive `uri`.
    #[serde(default)]
    pub ignore_uri_case: bool,
    /// Gateways this match applies to.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// Labels the client workload must have.
    #[serde(default)]
    pub source_labels: BTreeMap<String, String>,
    /// Namespace the client workload must be in.
    #[serde(default)]
    pub source_namespace: Option<String>,
}

/// Istio's StringMatch: one of exact, prefix, regex.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StringMatchSpec {
    /// Exact.
    #[serde(default)]
    pub exact: Option<String>,
    /// Prefix.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Regex.
    #[serde(default)]
    pub regex: Option<String>,
}

/// A weighted destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteDestination {
    /// Destination.
    pub destination: Destination,
    /// Weight (percent).
    #[serde(default)]
    pub weight: Option<u32>,
    /// Header changes for requests sent to this destination (after the route's).
    #[serde(default)]
    pub headers: Option<Headers>,
}

/// A destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// Service host (short name, or FQDN).
    pub host: String,
    /// DestinationRule subset.
    #[serde(default)]
    pub subset: Option<String>,
    /// Port.
    #[serde(default)]
    pub port: Option<PortSelector>,
}

/// A port selector.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortSelector {
    /// Number.
    pub number: u16,
}

/// A redirect.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRedirect {
    /// New path.
    #[serde(default)]
    pub uri: Option<String>,
    /// New authority.
    #[serde(default)]
    pub authority: Option<String>,
    /// New port.
    #[serde(default)]
    pub port: Option<u16>,
    /// `FROM_PROTOCOL_DEFAULT` or `FROM_REQUEST_PORT`.
    #[serde(default)]
    pub derive_port: Option<String>,
    /// New scheme.
    #[serde(default)]
    pub scheme: Option<String>,
    /// Status (301 by default).
    #[serde(default)]
    pub redirect_code: Option<u16>,
}

/// A direct response.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectResponse {
    /// Status.
    pub status: u16,
    /// Body.
    #[serde(default)]
    pub body: Option<DirectBody>,
}

/// A direct response body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectBody {
    /// Text.
    #[serde(default)]
    pub string: Option<String>,
    /// Base64 bytes (not supported).
    #[serde(default)]
    pub bytes: Option<String>,
}

/// A rewrite.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRewrite {
    /// New path (or prefix).
    #[serde(default)]
    pub uri: Option<String>,
    /// New authority.
    #[serde(default)]
    pub authority: Option<String>,
    /// Regex rewrite.
    #[serde(default)]
    pub uri_regex_rewrite: Option<RegexRewrite>,
}

/// `uriRegexRewrite`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegexRewrite {
    /// Regex.
    #[serde(rename = "match")]
    pub regex: String,
    /// Replacement with `\1` captures.
    pub rewrite: String,
}

/// Header changes, request and response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Headers {
    /// Request.
    #[serde(default)]
    pub request: Option<HeaderOperations>,
    /// Response.
    #[serde(default)]
    pub response: Option<HeaderOperations>,
}

/// set / add / remove.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderOperations {
    /// Set.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Add.
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    /// Remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// `corsPolicy`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CorsPolicy {
    /// Origins (exact, prefix, regex).
    #[serde(default)]
    pub allow_origins: Vec<StringMatchSpec>,
    /// Deprecated exact origins (`*`: any).
    #[serde(default)]
    pub allow_origin: Vec<String>,
    /// Methods.
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Request headers.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Exposed response headers.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Preflight cache lifetime.
    #[serde(default)]
    pub max_age: Option<String>,
    /// Allow credentials.
    #[serde(default)]
    pub allow_credentials: Option<bool>,
    /// `FORWARD` (default) or `IGNORE`: what happens to preflights from other origins.
    #[serde(default)]
    pub unmatched_preflights: Option<String>,
}

/// `retries`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRetry {
    /// Retries allowed (0: none).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Timeout of each attempt.
    #[serde(default)]
    pub per_try_timeout: Option<String>,
    /// Envoy retry conditions and status codes, comma-separated.
    #[serde(default)]
    pub retry_on: Option<String>,
    /// Locality preference (not applied: one locality here).
    #[serde(default)]
    pub retry_remote_localities: Option<bool>,
    /// Host selection on retries (not applied).
    #[serde(default)]
    pub retry_ignore_previous_hosts: Option<bool>,
    /// Backoff between attempts (not applied: Envoy's default).
    #[serde(default)]
    pub backoff: Option<String>,
}

/// One of `mirrors`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorPolicy {
    /// Destination.
    pub destination: Destination,
    /// Share mirrored (100 when absent).
    #[serde(default)]
    pub percentage: Option<Percent>,
}

/// Fault injection.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    /// Abort.
    #[serde(default)]
    pub abort: Option<FaultAbort>,
    /// Delay.
    #[serde(default)]
    pub delay: Option<FaultDelay>,
}

/// `fault.delay`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultDelay {
    /// How long (`1h`, `1m`, `1s`, `1ms`, or protobuf JSON `1.5s`).
    #[serde(default)]
    pub fixed_delay: Option<String>,
    /// Share delayed (none when absent, as in Istio).
    #[serde(default)]
    pub percentage: Option<Percent>,
    /// Deprecated integer share.
    #[serde(default)]
    pub percent: Option<u32>,
    /// Exponential delay (not supported, as in Istio).
    #[serde(default)]
    pub exponential_delay: Option<String>,
}

/// `fault.abort`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultAbort {
    /// Status.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// Percentage.
    #[serde(default)]
    pub percentage: Option<Percent>,
    /// gRPC status (not supported).
    #[serde(default)]
    pub grpc_status: Option<String>,
}

/// A percentage.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Percent {
    /// Value, 0–100.
    pub value: f64,
}

/// DestinationRule.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRule {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: DestinationRuleSpec,
}

/// DestinationRule spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    /// Host.
    pub host: String,
    /// Subsets.
    #[serde(default)]
    pub subsets: Vec<Subset>,
    /// Traffic policy (load balancer only: round robin).
    #[serde(default)]
    pub traffic_policy: Option<Value>,
    /// Export scope (not interpreted).
    #[serde(default)]
    pub export_to: Option<Value>,
}

/// A subset.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subset {
    /// Name.
    pub name: String,
    /// Pod labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Traffic policy (not supported per subset).
    #[serde(default)]
    pub traffic_policy: Option<Value>,
}

/// ServiceEntry: hosts outside the cluster (or not Kubernetes Services) made part of the mesh's
/// registry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntry {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: ServiceEntrySpec,
}

/// ServiceEntry spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntrySpec {
    /// Host names (exact, or `*.` wildcards).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Virtual IPs or CIDRs.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Ports.
    #[serde(default)]
    pub ports: Vec<ServiceEntryPort>,
    /// `MESH_EXTERNAL` (default) or `MESH_INTERNAL`.
    #[serde(default)]
    pub location: Option<String>,
    /// `NONE` (default), `STATIC`, `DNS`, `DNS_ROUND_ROBIN`.
    #[serde(default)]
    pub resolution: Option<String>,
    /// Endpoints (STATIC, DNS).
    #[serde(default)]
    pub endpoints: Vec<WorkloadEntry>,
    /// Namespaces the entry is visible to (`.`, `*`, names).
    #[serde(default)]
    pub export_to: Vec<String>,
    /// Pods selected as endpoints (not interpreted).
    #[serde(default)]
    pub workload_selector: Option<Value>,
    /// SANs of the endpoints' certificates (not interpreted).
    #[serde(default)]
    pub subject_alt_names: Vec<String>,
}

/// A ServiceEntry port.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntryPort {
    /// Number.
    pub number: u16,
    /// `HTTP`, `HTTPS`, `HTTP2`, `GRPC`, `TLS`, `TCP`, …
    #[serde(default)]
    pub protocol: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// The endpoints' port (default: `number`).
    #[serde(default)]
    pub target_port: Option<u16>,
}

/// A ServiceEntry endpoint (a WorkloadEntry's fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEntry {
    /// IP address or host name.
    #[serde(default)]
    pub address: String,
    /// Port per ServiceEntry port name.
    #[serde(default)]
    pub ports: BTreeMap<String, u16>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Network (not interpreted).
    #[serde(default)]
    pub network: Option<String>,
    /// Locality (not interpreted).
    #[serde(default)]
    pub locality: Option<String>,
    /// Weight (not interpreted).
    #[serde(default)]
    pub weight: Option<u32>,
    /// Service account (not interpreted).
    #[serde(default)]
    pub service_account: Option<String>,
}

/// Sidecar: what one workload's (or one namespace's) sidecar sees and does with unknown
/// destinations (`sidecar.proto`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sidecar {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: SidecarSpec,
}

/// Sidecar spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSpec {
    /// The Pods it applies to (none: every Pod of its namespace without a selected Sidecar).
    #[serde(default)]
    pub workload_selector: Option<SidecarWorkloadSelector>,
    /// What the workload may reach.
    #[serde(default)]
    pub egress: Vec<IstioEgressListener>,
    /// Inbound listeners (not interpreted).
    #[serde(default)]
    pub ingress: Vec<Value>,
    /// Inbound connection pool (not interpreted).
    #[serde(default)]
    pub inbound_connection_pool: Option<Value>,
    /// The workload's outbound policy (else the mesh's).
    #[serde(default)]
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
}

/// A Sidecar's `workloadSelector`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarWorkloadSelector {
    /// Pod labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A Sidecar egress listener: the hosts it imports (`namespace/dnsName`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioEgressListener {
    /// `namespace/dnsName` imports.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Port (not interpreted: every listener's hosts are imported on every port).
    #[serde(default)]
    pub port: Option<Value>,
    /// Bind address (not interpreted).
    #[serde(default)]
    pub bind: Option<String>,
    /// Capture mode (not interpreted).
    #[serde(default)]
    pub capture_mode: Option<String>,
}

/// `outboundTrafficPolicy` of a Sidecar.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundTrafficPolicy {
    /// `ALLOW_ANY` or `REGISTRY_ONLY`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Where unknown traffic goes under ALLOW_ANY (not interpreted).
    #[serde(default)]
    pub egress_proxy: Option<Value>,
}
