//! `translate`: Kubernetes objects in, a [`Snapshot`] out. Pure: no I/O, no clock.
//!
//! # Guarantees
//! - The same objects (in any order) give the same snapshot, byte for byte.
//! - An object that cannot be used is left out and reported as a [`TranslateError`] naming it and
//!   the field at fault; everything else still translates.
//!
//! # Layout
//! This module is the orchestrator: it runs each family over the objects and assembles the
//! snapshot. Each family reads the model and the shared leaves ([`common`], [`diagnostics`],
//! [`options`]) and never another family (nor this module):
//!
//! | module | reads |
//! | --- | --- |
//! | [`ingress`] (+ [`nginx`]) | Ingress, IngressClass, ingress-nginx annotations |
//! | [`gateway_api`] | GatewayClass, Gateway, HTTPRoute, ReferenceGrant (and GAMMA attachments) |
//! | [`istio`] | Istio Gateway, VirtualService, DestinationRule |
//! | [`mesh`] | the sidecar's outbound routing: every Service port, with the GAMMA routes and the routes a [`common::SidecarBindings`] (Istio's VirtualServices) binds |

pub(crate) mod admission;
pub mod common;
pub mod diagnostics;
pub(crate) mod egress;
pub mod gateway_api;
pub mod ingress;
pub mod istio;
pub mod mesh;
pub mod nginx;
pub mod options;
pub mod tls;

use std::collections::BTreeMap;

use portico_core::config::RoutingConfig;

pub use self::common::backend_key;
use self::common::Index;
pub use self::diagnostics::{Diagnostic, ErrorKind, Severity, TranslateError};
pub use self::options::{Options, CONTROLLER_NAME};
use crate::model::Object;
pub use crate::snapshot::{content_hash, Cluster, Listener, SdsSecret, Snapshot};

/// The result of [`translate`].
#[derive(Debug, Clone)]
pub struct Translation {
    /// The snapshot from every usable object.
    pub snapshot: Snapshot,
    /// Objects that could not be used (fully).
    pub errors: Vec<TranslateError>,
}

/// Translates objects into a snapshot and the errors of the objects it could not use.
pub fn translate(objects: &[Object], options: &Options) -> Translation {
    let mut errors = Vec::new();
    let admitted = admission::admit(objects, &mut errors);
    let objects = &*admitted;
    let index = Index::new(objects);
    let mut certs = tls::Certificates::new(objects, options.now);
    certs.keys_withheld = options.keys_withheld;
    let mut tls_ports = tls::TlsPorts::default();
    let ingress = ingress::translate(
        objects,
        &index,
        options,
        &mut certs,
        &mut tls_ports,
        &mut errors,
    );
    let mut backends = ingress.backends;
    let mut ports: BTreeMap<u16, RoutingConfig> = BTreeMap::new();
    if let Some(http) = ingress.http {
        ports.insert(80, http);
    }
    if let Some(https) = ingress.https {
        ports.insert(443, https);
    }
    let gamma = gateway_api::translate(
        objects,
        &index,
        options.forward,
        &mut ports,
        &mut backends,
        tls::TlsOut {
            certs: &mut certs,
            ports: &mut tls_ports,
        },
        &mut errors,
    );
    istio::translate(
        objects,
        &index,
        options.forward,
        &mut ports,
        &mut backends,
        tls::TlsOut {
            certs: &mut certs,
            ports: &mut tls_ports,
        },
        &mut errors,
    );
    let mut tables = tls_ports.finish();
    let (mesh, egress) = if options.mesh {
        let mut virtual_services = istio::SidecarVirtualServices::new(objects, &index);
        let (ports, egress) = mesh::translate(
            objects,
            &index,
            &gamma,
            &mut virtual_services,
            options.forward,
            &mut backends,
            &mut errors,
        );
        (ports, Some(egress))
    } else {
        (BTreeMap::new(), None)
    };
    // A TLS port whose chains all pass through still has a (never used) routing configuration.
    for port in tables.keys() {
        ports
            .entry(*port)
            .or_insert_with(|| RoutingConfig::for_listener(*port, options.forward));
    }
    // Every listener knows every backend, so its clusters stay put when routes move.
    let finish = |ports: BTreeMap<u16, RoutingConfig>,
                  tables: &mut BTreeMap<u16, portico_core::tls::select::TlsTable>|
     -> Vec<Listener> {
        ports
            .into_iter()
            .map(|(port, mut routing)| {
                let tls = tables.remove(&port);
                routing.backends = backends.clone();
                // The routing filter checks the Host against the SNI's chain and adds the
                // port's TLS response headers.
                routing.tls = tls.clone();
                routing.generation = generation(&routing);
                Listener { port, routing, tls }
            })
            .collect()
    };
    let listeners = finish(ports, &mut tables);
    let sidecar = finish(mesh, &mut BTreeMap::new());
    let clusters = backends
        .values()
        .map(|b| Cluster {
            name: b.cluster.clone(),
            endpoints: b.endpoints.clone(),
        })
        .collect();
    // The generation covers the routing, the TLS tables and the secrets' contents.
    let mut all: Vec<String> = listeners
        .iter()
        .chain(&sidecar)
        .map(|l| {
            let tls = l.tls.as_ref().map_or(String::new(), |t| {
                serde_json::to_string(t).unwrap_or_default()
            });
            format!("{}{tls}", l.routing.generation)
        })
        .collect();
    all.extend(egress.iter().map(|e| e.config.generation.clone()));
    all.extend(
        certs
            .sds
            .iter()
            .map(|(name, s)| format!("{name}={}", content_hash(&format!("{s:?}")))),
    );
    let generation = content_hash(&all.join(","));
    Translation {
        snapshot: Snapshot {
            listeners,
            sidecar,
            egress,
            clusters,
            secrets: certs.sds,
            generation,
        },
        errors,
    }
}

/// A stable content hash of the configuration, as its generation.
fn generation(config: &RoutingConfig) -> String {
    content_hash(&config.to_json())
}
