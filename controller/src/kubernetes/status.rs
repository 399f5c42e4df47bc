//! What the controller writes back to the cluster (the leader only): every PorticoConfig's
//! `status` — `observedGeneration`, the `Ready` and `Degraded` conditions with their reasons,
//! the configuration version pushed — the `status.loadBalancer` of the Ingresses it serves (given
//! addresses to publish), and a Kubernetes Event (`events.k8s.io/v1`, type
//! `Warning`) on the object for every problem a sync reports, once per problem. Writes are
//! server-side applies with one field manager, [`MANAGER`]; a status equal to the one the
//! object carries is not written again.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use kube::Client;
use serde_json::{json, Value};

use super::source::KubeStore;
use crate::model::portico::{Condition, PorticoConfigStatus};
use crate::reconcile::SyncReport;
use crate::translate::gateway_api::status::{Condition as GatewayApiCondition, GatewayApiStatus};
use crate::translate::Severity;

/// The field manager of every write.
pub const MANAGER: &str = "portico-controller";
/// `reportingController` of the Events.
pub const REPORTING_CONTROLLER: &str = "portico.dev/controller";

fn now_seconds() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn now_micro() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// The status a PorticoConfig at `generation` gets from `report`; conditions whose status did
/// not change keep their `lastTransitionTime` from `old`.
pub fn porticoconfig_status(
    report: &SyncReport,
    generation: Option<i64>,
    old: Option<&PorticoConfigStatus>,
) -> PorticoConfigStatus {
    let problems = report
        .messages()
        .iter()
        .filter(|(s, _)| *s == Severity::Error)
        .count()
        + report.kept_last_good.len();
    let version = report.snapshot.as_ref().map(|s| s.generation.clone());
    let condition = |type_: &str, status: bool, reason: &str, message: String| {
        let status = if status { "True" } else { "False" }.to_owned();
        let since = old
            .and_then(|o| o.conditions.iter().find(|c| c.type_ == type_))
            .filter(|c| c.status == status)
            .map(|c| c.last_transition_time.clone());
        Condition {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message,
            last_transition_time: since.unwrap_or_else(now_seconds),
            observed_generation: generation,
        }
    };
    let ready = match &version {
        Some(v) => condition(
            "Ready",
            true,
            "Pushed",
            format!("configuration {v} is pushed to Envoy"),
        ),
        None => condition(
            "Ready",
            false,
            "NotPushed",
            "no configuration pushed yet".into(),
        ),
    };
    let degraded = if problems > 0 {
        condition(
            "Degraded",
            true,
            "ObjectsLeftOut",
            format!(
                "{problems} problem(s): objects left out or served at their last good version (see the Events on them)"
            ),
        )
    } else {
        condition(
            "Degraded",
            false,
            "AllObjectsUsed",
            "every object is in the configuration".into(),
        )
    };
    PorticoConfigStatus {
        observed_generation: generation,
        conditions: vec![ready, degraded],
        config_version: version,
    }
}

fn generation(raw: &Value) -> Option<i64> {
    raw.pointer("/metadata/generation").and_then(Value::as_i64)
}

/// `conditions` as the API writes them, at `generation`; a condition whose status did not
/// change keeps its `lastTransitionTime` from `old`.
fn merge_conditions(
    conditions: &[GatewayApiCondition],
    old: Option<&Vec<Value>>,
    generation: Option<i64>,
) -> Vec<Value> {
    conditions
        .iter()
        .map(|c| {
            let status = if c.status { "True" } else { "False" };
            let since = old
                .and_then(|o| o.iter().find(|x| x["type"] == c.type_))
                .filter(|x| x["status"] == status)
                .and_then(|x| x["lastTransitionTime"].as_str())
                .map_or_else(now_seconds, str::to_owned);
            let mut v = json!({
                "type": c.type_, "status": status, "reason": c.reason, "message": c.message,
                "lastTransitionTime": since,
            });
            if let Some(g) = generation {
                v["observedGeneration"] = json!(g);
            }
            v
        })
        .collect()
}

/// The object's top-level `status.conditions` merged with `conditions`.
fn conditions_json(conditions: &[GatewayApiCondition], raw: &Value) -> Vec<Value> {
    merge_conditions(
        conditions,
        raw.pointer("/status/conditions").and_then(Value::as_array),
        generation(raw),
    )
}

fn porticoconfig_resource() -> ApiResource {
    super::kinds::find(crate::model::PORTICO_GROUP, "PorticoConfig")
        .map(|k| k.api_resource("v1alpha1"))
        .unwrap_or_else(|| ApiResource {
            group: "portico.dev".into(),
            version: "v1alpha1".into(),
            api_version: "portico.dev/v1alpha1".into(),
            kind: "PorticoConfig".into(),
            plural: "porticoconfigs".into(),
        })
}

fn event_resource() -> ApiResource {
    ApiResource {
        group: "events.k8s.io".into(),
        version: "v1".into(),
        api_version: "events.k8s.io/v1".into(),
        kind: "Event".into(),
        plural: "events".into(),
    }
}

/// Writes statuses and events for one controller replica (call only while it leads).
#[derive(Clone)]
pub struct StatusWriter {
    client: Client,
    identity: String,
    /// `status.loadBalancer.ingress` of the Ingresses served (empty: Ingress status untouched).
    publish: Vec<Value>,
    /// How Ingresses are picked (their classes).
    options: crate::translate::Options,
    /// `(object, message)` of every Event created and still current.
    emitted: BTreeSet<(String, String)>,
}

impl std::fmt::Debug for StatusWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusWriter")
            .field("identity", &self.identity)
            .field("emitted", &self.emitted.len())
            .finish_non_exhaustive()
    }
}

/// What one [`StatusWriter::write`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// PorticoConfig statuses written.
    pub statuses: usize,
    /// Ingress statuses written.
    pub ingresses: usize,
    /// Events created.
    pub events: usize,
    /// GatewayClass, Gateway, HTTPRoute and TLSRoute statuses written.
    pub gateway_api: usize,
}

impl StatusWriter {
    /// A writer for the replica `identity`.
    pub fn new(client: Client, identity: &str) -> StatusWriter {
        StatusWriter {
            client,
            identity: identity.to_owned(),
            publish: Vec::new(),
            options: crate::translate::Options::default(),
            emitted: BTreeSet::new(),
        }
    }

    /// Also publishes `addresses` (IPs or hostnames) in `status.loadBalancer.ingress` of every
    /// Ingress served under `options` (ingress-nginx's `--publish-status-address`).
    pub fn publishing(mut self, addresses: &[String], options: crate::translate::Options) -> Self {
        self.publish = addresses
            .iter()
            .map(|a| match a.parse::<std::net::IpAddr>() {
                Ok(_) => json!({"ip": a}),
                Err(_) => json!({"hostname": a}),
            })
            .collect();
        self.options = options;
        self
    }

    /// Writes what `report` (the last sync of the objects in `store`) says: the status of every
    /// PorticoConfig that differs, and an Event for every new problem.
    ///
    /// # Errors
    /// The first write the API server refused or could not take; the rest are still tried on
    /// the next call.
    pub async fn write(
        &mut self,
        store: &KubeStore,
        report: &SyncReport,
    ) -> Result<Written, kube::Error> {
        let mut written = Written::default();
        let (objects, _) = store.objects();
        let api_params = PatchParams::apply(MANAGER).force();
        for o in objects.iter().filter(|o| o["kind"] == "PorticoConfig") {
            let (Some(name), Some(namespace)) = (
                o.pointer("/metadata/name").and_then(Value::as_str),
                o.pointer("/metadata/namespace").and_then(Value::as_str),
            ) else {
                continue;
            };
            let old: Option<PorticoConfigStatus> = o
                .get("status")
                .and_then(|s| serde_json::from_value(s.clone()).ok());
            let generation = o.pointer("/metadata/generation").and_then(Value::as_i64);
            let status = porticoconfig_status(report, generation, old.as_ref());
            if old.as_ref() == Some(&status) {
                continue;
            }
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), namespace, &porticoconfig_resource());
            let patch = json!({
                "apiVersion": "portico.dev/v1alpha1", "kind": "PorticoConfig",
                "metadata": {"name": name, "namespace": namespace},
                "status": status,
            });
            api.patch_status(name, &api_params, &Patch::Apply(&patch))
                .await?;
            written.statuses += 1;
        }
        if !self.publish.is_empty() {
            written.ingresses = self.ingresses(&objects, &api_params).await?;
        }
        written.gateway_api = self
            .gateway_api(&objects, &report.gateway_status, &api_params)
            .await?;
        written.events = self.events(report).await?;
        Ok(written)
    }

    /// `status.loadBalancer` of the served Ingresses that do not carry it yet.
    async fn ingresses(
        &self,
        objects: &[Value],
        params: &PatchParams,
    ) -> Result<usize, kube::Error> {
        let parsed: Vec<crate::model::Object> = objects
            .iter()
            .filter(|o| o["kind"] == "Ingress" || o["kind"] == "IngressClass")
            .filter_map(|o| {
                crate::model::Object::parse(o.clone(), crate::model::ParseMode::Tolerant).ok()
            })
            .collect();
        let served = crate::translate::ingress::served_ingresses(&parsed, &self.options);
        let want = json!({"ingress": self.publish});
        let ar = super::kinds::find(crate::model::NETWORKING_GROUP, "Ingress")
            .map(|k| k.api_resource("v1"))
            .unwrap_or_else(porticoconfig_resource);
        let mut n = 0;
        for r in served {
            let current = objects.iter().find(|o| {
                o["kind"] == "Ingress"
                    && o.pointer("/metadata/name").and_then(Value::as_str) == Some(r.name.as_str())
                    && o.pointer("/metadata/namespace").and_then(Value::as_str)
                        == Some(r.namespace.as_str())
            });
            if current.is_some_and(|o| o.pointer("/status/loadBalancer") == Some(&want)) {
                continue;
            }
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), &r.namespace, &ar);
            let patch = json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": r.name, "namespace": r.namespace},
                "status": {"loadBalancer": want},
            });
            api.patch_status(&r.name, params, &Patch::Apply(&patch))
                .await?;
            n += 1;
        }
        Ok(n)
    }

    /// The Gateway API statuses that differ from what the objects carry.
    async fn gateway_api(
        &self,
        objects: &[Value],
        status: &GatewayApiStatus,
        params: &PatchParams,
    ) -> Result<usize, kube::Error> {
        let find = |kind: &str, namespace: &str, name: &str| {
            objects.iter().find(|o| {
                o["kind"] == kind
                    && o.pointer("/apiVersion")
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.starts_with(crate::model::GATEWAY_GROUP))
                    && o.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
                    && o.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        == namespace
            })
        };
        let mut wanted: Vec<(&Value, Value)> = Vec::new();
        for c in &status.classes {
            if let Some(raw) = find("GatewayClass", "", &c.name) {
                let conditions = conditions_json(&c.conditions, raw);
                wanted.push((raw, json!({"conditions": conditions})));
            }
        }
        for g in &status.gateways {
            let Some(raw) = find("Gateway", &g.object.namespace, &g.object.name) else {
                continue;
            };
            let old_listeners = raw.pointer("/status/listeners").and_then(Value::as_array);
            let listeners: Vec<Value> = g
                .listeners
                .iter()
                .map(|l| {
                    let old = old_listeners
                        .and_then(|ls| ls.iter().find(|o| o["name"] == l.name.as_str()));
                    json!({
                        "name": l.name,
                        "supportedKinds": l.supported_kinds.iter()
                            .map(|k| json!({"group": crate::model::GATEWAY_GROUP, "kind": k}))
                            .collect::<Vec<_>>(),
                        "attachedRoutes": l.attached_routes,
                        "conditions": merge_conditions(
                            &l.conditions,
                            old.and_then(|o| o["conditions"].as_array()),
                            generation(raw),
                        ),
                    })
                })
                .collect();
            let mut st = json!({
                "conditions": conditions_json(&g.conditions, raw),
                "listeners": listeners,
            });
            if !self.publish.is_empty() {
                st["addresses"] = self
                    .publish
                    .iter()
                    .map(|a| match a.get("ip") {
                        Some(ip) => json!({"type": "IPAddress", "value": ip}),
                        None => json!({"type": "Hostname", "value": a["hostname"]}),
                    })
                    .collect();
            }
            wanted.push((raw, st));
        }
        for r in &status.routes {
            let Some(raw) = find(&r.object.kind, &r.object.namespace, &r.object.name) else {
                continue;
            };
            let old_parents = raw.pointer("/status/parents").and_then(Value::as_array);
            // Entries other controllers wrote stay as they are.
            let mut parents: Vec<Value> = old_parents
                .into_iter()
                .flatten()
                .filter(|p| !portico_entry(p))
                .cloned()
                .collect();
            for p in &r.parents {
                let mut parent_ref = json!({
                    "group": p.parent_ref.group, "kind": p.parent_ref.kind, "name": p.parent_ref.name,
                });
                if let Some(ns) = &p.parent_ref.namespace {
                    parent_ref["namespace"] = json!(ns);
                }
                if let Some(s) = &p.parent_ref.section_name {
                    parent_ref["sectionName"] = json!(s);
                }
                if let Some(port) = p.parent_ref.port {
                    parent_ref["port"] = json!(port);
                }
                let old = old_parents.and_then(|ps| {
                    ps.iter().find(|o| {
                        o["controllerName"] == p.controller && o["parentRef"] == parent_ref
                    })
                });
                parents.push(json!({
                    "parentRef": parent_ref,
                    "controllerName": p.controller,
                    "conditions": merge_conditions(
                        &p.conditions,
                        old.and_then(|o| o["conditions"].as_array()),
                        generation(raw),
                    ),
                }));
            }
            wanted.push((raw, json!({"parents": parents})));
        }
        // Routes that no longer name a Gateway of Portico's lose the entries it wrote.
        for raw in objects.iter().filter(|o| {
            (o["kind"] == "HTTPRoute" || o["kind"] == "TLSRoute")
                && o.pointer("/status/parents")
                    .and_then(Value::as_array)
                    .is_some_and(|ps| ps.iter().any(portico_entry))
        }) {
            let reported = status.routes.iter().any(|r| {
                raw["kind"] == r.object.kind.as_str()
                    && raw.pointer("/metadata/name").and_then(Value::as_str)
                        == Some(r.object.name.as_str())
                    && raw.pointer("/metadata/namespace").and_then(Value::as_str)
                        == Some(r.object.namespace.as_str())
            });
            if reported {
                continue;
            }
            let others: Vec<Value> = raw["status"]["parents"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| !portico_entry(p))
                .cloned()
                .collect();
            wanted.push((raw, json!({"parents": others})));
        }
        let (mut n, mut failed) = (0, None);
        for (raw, st) in wanted {
            if raw.get("status") == Some(&st) {
                continue;
            }
            let (Some(api_version), Some(kind), Some(name)) = (
                raw["apiVersion"].as_str(),
                raw["kind"].as_str(),
                raw.pointer("/metadata/name").and_then(Value::as_str),
            ) else {
                continue;
            };
            let Some(k) = super::kinds::find(crate::model::GATEWAY_GROUP, kind) else {
                continue;
            };
            let version = api_version.rsplit('/').next().unwrap_or(api_version);
            let ar = k.api_resource(version);
            let namespace = raw.pointer("/metadata/namespace").and_then(Value::as_str);
            let api: Api<DynamicObject> = match namespace {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
                None => Api::all_with(self.client.clone(), &ar),
            };
            let mut metadata = json!({"name": name});
            if let Some(ns) = namespace {
                metadata["namespace"] = json!(ns);
            }
            let patch = json!({
                "apiVersion": api_version, "kind": kind, "metadata": metadata, "status": st,
            });
            // One object the API server refuses (its schema, a conflict) does not hold back the
            // others' status: the first error is returned once all were tried.
            match api.patch_status(name, params, &Patch::Apply(&patch)).await {
                Ok(_) => n += 1,
                Err(e) => {
                    tracing::warn!(kind, name, error = %e, "writing Gateway API status failed");
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// One Event per new `(object, problem)` of `report`; problems that went away may be
    /// reported again when they come back.
    async fn events(&mut self, report: &SyncReport) -> Result<usize, kube::Error> {
        let mut current: BTreeMap<(String, String), (crate::model::ObjectRef, &'static str)> =
            BTreeMap::new();
        for e in &report.load_errors {
            if let Some(r) = &e.object_ref {
                current.insert(
                    (r.to_string(), e.message.clone()),
                    (r.clone(), "InvalidObject"),
                );
            }
        }
        for (_, e) in &report.translate_errors {
            let reason = match e.severity() {
                Severity::Error => "LeftOut",
                _ => "Ignored",
            };
            current.insert(
                (e.object.to_string(), e.to_string()),
                (e.object.clone(), reason),
            );
        }
        for r in &report.kept_last_good {
            current.insert(
                (r.to_string(), "serving its last good version".into()),
                (r.clone(), "LastGoodVersion"),
            );
        }
        self.emitted.retain(|k| current.contains_key(k));
        let mut created = 0;
        for (key, (object, reason)) in current {
            if self.emitted.contains(&key) {
                continue;
            }
            let namespace = if object.namespace.is_empty() {
                "default"
            } else {
                &object.namespace
            };
            let api_version = super::kinds::find(&object.group, &object.kind)
                .map(|k| k.api_resource(k.versions[0]).api_version)
                .unwrap_or_default();
            let mut note = key.1.clone();
            note.truncate(1000);
            let event = json!({
                "apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"generateName": format!("{}.", object.name), "namespace": namespace},
                "eventTime": now_micro(),
                "reportingController": REPORTING_CONTROLLER,
                "reportingInstance": self.identity,
                "action": "Translate",
                "reason": reason,
                "type": "Warning",
                "note": note,
                "regarding": {
                    "apiVersion": api_version, "kind": object.kind,
                    "namespace": if object.namespace.is_empty() { None } else { Some(&object.namespace) },
                    "name": object.name,
                },
            });
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), namespace, &event_resource());
            let event: DynamicObject =
                serde_json::from_value(event).map_err(kube::Error::SerdeError)?;
            api.create(&PostParams::default(), &event).await?;
            self.emitted.insert(key);
            created += 1;
        }
        Ok(created)
    }
}

/// A route status entry Portico wrote (its gateway or its mesh controller).
fn portico_entry(p: &Value) -> bool {
    p["controllerName"]
        .as_str()
        .is_some_and(crate::translate::gateway_api::status::is_portico_controller)
}
