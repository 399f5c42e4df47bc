//! Gateway API status, as the specification defines it (`apis/v1/gateway_types.go`,
//! `apis/v1/shared_types.go`) and its conformance tests check it: what the controller writes on
//! the GatewayClasses, Gateways and routes it is responsible for. Pure: computed from the objects
//! and the diagnostics of their translation — by the Kubernetes reconciler after each push (off
//! the push's path), written by the leader.
//!
//! - **GatewayClass** whose `controllerName` is [`GATEWAY_CONTROLLER`]: `Accepted`.
//! - **Gateway** of such a class (or of a class that does not exist: Portico serves it all the
//!   same): per listener `supportedKinds`, `attachedRoutes` and the conditions `Accepted`
//!   (`UnsupportedProtocol`, `UnsupportedValue`), `Conflicted` (`ProtocolConflict`,
//!   `HostnameConflict`, else `NoConflicts`), `ResolvedRefs` (`InvalidRouteKinds`,
//!   `InvalidCertificateRef`, `RefNotPermitted`) and `Programmed`; the Gateway's `Accepted` is
//!   `Accepted` when every listener is, `ListenersNotValid` (True) when some are and
//!   `ListenersNotValid` (False) when none is; `Programmed` follows it.
//! - **HTTPRoute / TLSRoute**: one `parents[]` entry per `parentRef` naming such a Gateway, with
//!   `Accepted` (`NoMatchingParent`: no listener of that name or port; `NotAllowedByListeners`:
//!   the listeners it names do not admit its namespace or kind; `NoMatchingListenerHostname`;
//!   `UnsupportedValue`: the route itself could not be used) and `ResolvedRefs`
//!   (`InvalidKind`, `RefNotPermitted`, `BackendNotFound`). A listener counts a route once
//!   however many of its `parentRefs` attach it there, and only a route that was accepted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::rules::{backend_problem, BackendProblem, BackendRefView};
use super::tls::certificate;
use super::{classify_listeners, listener_admits, route_hostnames, ListenerVerdict, GROUP};
use crate::model::gateway::{Gateway, GatewayListener, HttpBackendRef, ParentRef};
use crate::model::{namespace_of, Object, ObjectMeta, ObjectRef, Resource};
use crate::translate::common::Index;
use crate::translate::diagnostics::TranslateError;

/// The `controllerName` of the GatewayClasses Portico is responsible for.
pub const GATEWAY_CONTROLLER: &str = "portico.dev/gateway-controller";

/// The `controllerName` of route status entries for Service parents (GAMMA), which Portico's
/// sidecar routing serves (as Istio's `istio.io/mesh-controller` beside its gateway controller).
pub const MESH_CONTROLLER: &str = "portico.dev/mesh-controller";

/// Whether a route status entry's `controllerName` is one Portico writes.
pub fn is_portico_controller(name: &str) -> bool {
    name == GATEWAY_CONTROLLER || name == MESH_CONTROLLER
}

/// One condition: type, status, the spec's reason, a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `Accepted`, `Programmed`, …
    pub type_: &'static str,
    /// True or False.
    pub status: bool,
    /// The spec's reason.
    pub reason: &'static str,
    /// For people.
    pub message: String,
}

fn condition(
    type_: &'static str,
    status: bool,
    reason: &'static str,
    message: impl Into<String>,
) -> Condition {
    Condition {
        type_,
        status,
        reason,
        message: message.into(),
    }
}

/// The status of a GatewayClass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassStatus {
    /// Its name.
    pub name: String,
    /// `Accepted`.
    pub conditions: Vec<Condition>,
}

/// The status of one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerStatus {
    /// The listener's name.
    pub name: String,
    /// The route kinds (of the Gateway API group) that may attach.
    pub supported_kinds: Vec<&'static str>,
    /// How many accepted routes are attached.
    pub attached_routes: u32,
    /// `Accepted`, `Conflicted`, `ResolvedRefs`, `Programmed`.
    pub conditions: Vec<Condition>,
}

/// The status of a Gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayStatus {
    /// Which Gateway.
    pub object: ObjectRef,
    /// `Accepted`, `Programmed`.
    pub conditions: Vec<Condition>,
    /// One per listener, in the spec's order.
    pub listeners: Vec<ListenerStatus>,
}

/// A `parentRef` as the status repeats it (group and kind defaulted, as the API server's
/// schema defaults them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusParentRef {
    /// Group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace, when the route gave one.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Listener name, when given.
    pub section_name: Option<String>,
    /// Port, when given.
    pub port: Option<u16>,
}

/// The status of a route with respect to one parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentStatus {
    /// The `parentRef`.
    pub parent_ref: StatusParentRef,
    /// [`GATEWAY_CONTROLLER`] for a Gateway parent, [`MESH_CONTROLLER`] for a Service parent.
    pub controller: &'static str,
    /// `Accepted`, `ResolvedRefs`.
    pub conditions: Vec<Condition>,
}

/// The status of an HTTPRoute or a TLSRoute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteStatus {
    /// Which route.
    pub object: ObjectRef,
    /// One per `parentRef` naming a Gateway Portico is responsible for.
    pub parents: Vec<ParentStatus>,
}

/// Everything Portico says about the Gateway API objects it is responsible for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayApiStatus {
    /// GatewayClasses whose `controllerName` is Portico's.
    pub classes: Vec<ClassStatus>,
    /// Gateways of those classes (or of classes that do not exist).
    pub gateways: Vec<GatewayStatus>,
    /// Routes naming those Gateways.
    pub routes: Vec<RouteStatus>,
}

/// A route of either kind, as attachment sees it.
struct RouteView<'a> {
    kind: &'static str,
    object: ObjectRef,
    meta: &'a ObjectMeta,
    parents: &'a [ParentRef],
    hostnames: &'a [String],
    backends: Vec<&'a HttpBackendRef>,
}

/// The route kinds a listener of `protocol` takes.
/// A `parentRef` to a core Service (GAMMA).
fn is_service_parent(p: &ParentRef) -> bool {
    p.kind.as_deref() == Some("Service") && p.group.as_deref().unwrap_or("").is_empty()
}

fn kinds_for(protocol: &str) -> &'static [&'static str] {
    match protocol {
        "HTTP" | "HTTPS" => &["HTTPRoute"],
        "TLS" => &["TLSRoute"],
        _ => &[],
    }
}

/// The listener's supported kinds and whether `allowedRoutes.kinds` named one it cannot take.
fn supported_kinds(l: &GatewayListener) -> (Vec<&'static str>, bool) {
    let possible = kinds_for(&l.protocol);
    match l.allowed_routes.as_ref().and_then(|a| a.kinds.as_ref()) {
        None => (possible.to_vec(), false),
        Some(kinds) => {
            let mut out = Vec::new();
            let mut invalid = false;
            for k in kinds {
                let group_ok = k.group.as_deref().unwrap_or(GROUP) == GROUP;
                match possible.iter().find(|p| **p == k.kind) {
                    Some(p) if group_ok => {
                        if !out.contains(p) {
                            out.push(*p);
                        }
                    }
                    _ => invalid = true,
                }
            }
            (out, invalid)
        }
    }
}

/// What a listener takes given its verdict: nothing when it is not accepted (its protocol or
/// mode is not supported), else [`supported_kinds`].
fn listener_kinds(l: &GatewayListener, verdict: &ListenerVerdict) -> (Vec<&'static str>, bool) {
    match verdict {
        ListenerVerdict::Rejected(p) if p.condition == "Accepted" => (Vec::new(), false),
        _ => supported_kinds(l),
    }
}

/// Whether the Gateway's class is Portico's: its GatewayClass names [`GATEWAY_CONTROLLER`], or
/// it does not exist (Portico serves such Gateways too).
fn responsible(g: &Gateway, classes: &HashMap<&str, &str>) -> bool {
    classes
        .get(g.spec.gateway_class_name.as_str())
        .is_none_or(|c| *c == GATEWAY_CONTROLLER)
}

/// The status of every Gateway API object Portico is responsible for. `errors` are the
/// diagnostics of translating `objects`: a route left out is not accepted. With `mesh` (Portico
/// routes the sidecars), HTTPRoutes whose parent is a Service get an entry for it too.
pub fn status<'e>(
    objects: &[Object],
    errors: impl IntoIterator<Item = &'e TranslateError>,
    mesh: bool,
) -> GatewayApiStatus {
    let mut out = GatewayApiStatus::default();
    let mut classes: HashMap<&str, &str> = HashMap::new();
    for o in objects {
        if let Object::GatewayClass(c) = o {
            let controller = c
                .spec
                .get("controllerName")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            classes.insert(c.metadata.name.as_str(), controller);
            if controller == GATEWAY_CONTROLLER {
                out.classes.push(ClassStatus {
                    name: c.metadata.name.clone(),
                    conditions: vec![condition(
                        "Accepted",
                        true,
                        "Accepted",
                        "Portico serves the Gateways of this class",
                    )],
                });
            }
        }
    }
    let gateways: Vec<&Gateway> = objects
        .iter()
        .filter_map(|o| match o {
            Object::Gateway(g) => Some(g),
            _ => None,
        })
        .collect();
    let service_parents = mesh && objects.iter().any(
        |o| matches!(o, Object::HttpRoute(r) if r.spec.parent_refs.iter().any(is_service_parent)),
    );
    if gateways.is_empty() && out.classes.is_empty() && !service_parents {
        return out;
    }
    let namespaces: HashMap<&str, &ObjectMeta> = objects
        .iter()
        .filter_map(|o| match o {
            Object::Namespace(n) => Some((n.metadata.name.as_str(), &n.metadata)),
            _ => None,
        })
        .collect();
    let index = Index::new(objects);
    let index = &index;
    let left_out: BTreeMap<&ObjectRef, &TranslateError> = errors
        .into_iter()
        .filter(|e| e.object_dropped())
        .map(|e| (&e.object, e))
        .collect();
    let routes: Vec<RouteView<'_>> = objects
        .iter()
        .filter_map(|o| match o {
            Object::HttpRoute(r) => Some(RouteView {
                kind: "HTTPRoute",
                object: r.object_ref(),
                meta: &r.metadata,
                parents: &r.spec.parent_refs,
                hostnames: &r.spec.hostnames,
                backends: r.spec.rules.iter().flat_map(|x| &x.backend_refs).collect(),
            }),
            Object::TlsRoute(r) => Some(RouteView {
                kind: "TLSRoute",
                object: r.object_ref(),
                meta: &r.metadata,
                parents: &r.spec.parent_refs,
                hostnames: &r.spec.hostnames,
                backends: r.spec.rules.iter().flat_map(|x| &x.backend_refs).collect(),
            }),
            _ => None,
        })
        .collect();

    let verdicts = classify_listeners(&gateways);
    // Routes attached to each listener: (gateway index, listener index) → route indexes.
    let mut attached: BTreeMap<(usize, usize), BTreeSet<usize>> = BTreeMap::new();
    for (ri, r) in routes.iter().enumerate() {
        let route_ns = namespace_of(r.meta);
        let mut parents = Vec::new();
        // A route translate left out is accepted by no parent.
        let unusable = || {
            left_out.get(&r.object).map(|e| {
                condition(
                    "Accepted",
                    false,
                    "UnsupportedValue",
                    format!("{}: {}", e.field, e.kind),
                )
            })
        };
        // ResolvedRefs does not depend on the parent.
        let resolved = || {
            let problems: Vec<BackendProblem> = r
                .backends
                .iter()
                .filter_map(|b| {
                    backend_problem(
                        r.kind,
                        route_ns,
                        r.parents,
                        &BackendRefView::from(*b),
                        objects,
                        index,
                    )
                })
                .collect();
            match problems.first() {
                None => condition(
                    "ResolvedRefs",
                    true,
                    "ResolvedRefs",
                    "every reference resolves",
                ),
                Some(first) => condition(
                    "ResolvedRefs",
                    false,
                    first.reason,
                    problems
                        .iter()
                        .map(|p| p.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            }
        };
        let status_ref = |p: &ParentRef, group: &str, kind: &str| StatusParentRef {
            group: group.to_owned(),
            kind: kind.to_owned(),
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            section_name: p.section_name.clone(),
            port: p.port,
        };
        for p in r.parents {
            if is_service_parent(p) {
                // GAMMA: the sidecars serve the route for that Service (translate's mesh
                // attachment), HTTPRoutes only.
                if !mesh || r.kind != "HTTPRoute" {
                    continue;
                }
                let parent_ns = p.namespace.as_deref().unwrap_or(route_ns);
                let accepted = if let Some(c) = unusable() {
                    c
                } else {
                    match index.services.get(&(parent_ns, p.name.as_str())) {
                        None => condition(
                            "Accepted",
                            false,
                            "NoMatchingParent",
                            format!("Service {parent_ns}/{} not found", p.name),
                        ),
                        Some(svc) => match super::service_parent_port(svc, p, parent_ns) {
                            Err(message) => {
                                condition("Accepted", false, "NoMatchingParent", message)
                            }
                            Ok(_) => condition(
                                "Accepted",
                                true,
                                "Accepted",
                                "the sidecars route requests to the Service",
                            ),
                        },
                    }
                };
                parents.push(ParentStatus {
                    parent_ref: status_ref(p, "", "Service"),
                    controller: MESH_CONTROLLER,
                    conditions: vec![accepted, resolved()],
                });
                continue;
            }
            let group = p.group.as_deref().unwrap_or(GROUP);
            let kind = p.kind.as_deref().unwrap_or("Gateway");
            if group != GROUP || kind != "Gateway" {
                continue;
            }
            let parent_ns = p.namespace.as_deref().unwrap_or(route_ns);
            let Some((gi, g)) = gateways
                .iter()
                .enumerate()
                .find(|(_, g)| g.metadata.name == p.name && namespace_of(&g.metadata) == parent_ns)
            else {
                continue;
            };
            if !responsible(g, &classes) {
                continue;
            }
            // The listeners the reference names, those that admit the route, those it attaches to.
            let (mut named, mut admitting, mut hits) = (0, 0, Vec::new());
            for (li, l) in g.spec.listeners.iter().enumerate() {
                if p.section_name.as_deref().is_some_and(|s| s != l.name)
                    || p.port.is_some_and(|port| port != l.port)
                {
                    continue;
                }
                named += 1;
                if !listener_kinds(l, &verdicts[gi][li]).0.contains(&r.kind)
                    || !listener_admits(g, l, r.kind, r.meta, &namespaces)
                {
                    continue;
                }
                admitting += 1;
                if !route_hostnames(r.hostnames, l).is_empty() {
                    hits.push(li);
                }
            }
            let accepted = if let Some(c) = unusable() {
                c
            } else if named == 0 {
                condition(
                    "Accepted",
                    false,
                    "NoMatchingParent",
                    "no listener of the Gateway has that name and port",
                )
            } else if admitting == 0 {
                condition(
                    "Accepted",
                    false,
                    "NotAllowedByListeners",
                    "the listeners do not admit routes of this kind from this namespace",
                )
            } else if hits.is_empty() {
                condition(
                    "Accepted",
                    false,
                    "NoMatchingListenerHostname",
                    "no hostname of the route intersects a listener's",
                )
            } else {
                condition("Accepted", true, "Accepted", "the route is attached")
            };
            if accepted.status {
                for li in hits {
                    attached.entry((gi, li)).or_default().insert(ri);
                }
            }
            parents.push(ParentStatus {
                parent_ref: status_ref(p, group, kind),
                controller: GATEWAY_CONTROLLER,
                conditions: vec![accepted, resolved()],
            });
        }
        if !parents.is_empty() {
            out.routes.push(RouteStatus {
                object: r.object.clone(),
                parents,
            });
        }
    }

    let mut certs = crate::translate::tls::Certificates::new(objects, None);
    for (gi, (g, verdicts)) in gateways.iter().zip(&verdicts).enumerate() {
        if !responsible(g, &classes) {
            continue;
        }
        let mut listeners = Vec::new();
        for (li, (l, verdict)) in g.spec.listeners.iter().zip(verdicts).enumerate() {
            let (kinds, invalid_kinds) = listener_kinds(l, verdict);
            let mut accepted = condition("Accepted", true, "Accepted", "the listener is valid");
            let mut conflicted = condition("Conflicted", false, "NoConflicts", "no conflict");
            let mut resolved = condition(
                "ResolvedRefs",
                true,
                "ResolvedRefs",
                "every reference resolves",
            );
            let mut certificate_ok = true;
            if let ListenerVerdict::Rejected(p) = verdict {
                let message = p.kind.to_string();
                if p.condition == "Conflicted" {
                    conflicted = condition("Conflicted", true, p.reason, message);
                } else {
                    accepted = condition("Accepted", false, p.reason, message);
                }
            } else if l.protocol == "HTTPS" {
                if let Err(p) = certificate(objects, &mut certs, g, li, l) {
                    certificate_ok = false;
                    let c = condition(p.condition, false, p.reason, p.error.kind.to_string());
                    if p.condition == "Accepted" {
                        accepted = c;
                    } else {
                        resolved = c;
                    }
                }
            }
            if invalid_kinds && resolved.status {
                resolved = condition(
                    "ResolvedRefs",
                    false,
                    "InvalidRouteKinds",
                    format!(
                        "allowedRoutes.kinds names a kind a {} listener cannot take (it takes {})",
                        l.protocol,
                        kinds_for(&l.protocol).join(", ")
                    ),
                );
            }
            let programmed =
                if accepted.status && !conflicted.status && certificate_ok && !kinds.is_empty() {
                    condition("Programmed", true, "Programmed", "the listener is served")
                } else {
                    condition("Programmed", false, "Invalid", "the listener is not served")
                };
            let attached_routes = attached.get(&(gi, li)).map_or(0, |s| s.len()) as u32;
            listeners.push(ListenerStatus {
                name: l.name.clone(),
                supported_kinds: kinds,
                attached_routes,
                conditions: vec![accepted, conflicted, resolved, programmed],
            });
        }
        let valid = listeners
            .iter()
            .filter(|l| l.conditions[0].status && !l.conditions[1].status)
            .count();
        let accepted = if valid == listeners.len() {
            condition("Accepted", true, "Accepted", "every listener is valid")
        } else if valid > 0 {
            condition(
                "Accepted",
                true,
                "ListenersNotValid",
                format!(
                    "{} of {} listeners are not valid",
                    listeners.len() - valid,
                    listeners.len()
                ),
            )
        } else {
            condition(
                "Accepted",
                false,
                "ListenersNotValid",
                "no listener is valid",
            )
        };
        let programmed = if accepted.status {
            condition("Programmed", true, "Programmed", "the Gateway is served")
        } else {
            condition("Programmed", false, "Invalid", "no listener is served")
        };
        out.gateways.push(GatewayStatus {
            object: g.object_ref(),
            conditions: vec![accepted, programmed],
            listeners,
        });
    }
    out
}
