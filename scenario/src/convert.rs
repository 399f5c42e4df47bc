//! Scenarios run on converted objects (`--converted`): the served Ingresses replaced by what
//! `portico-controller convert` makes of them, so the same requests check that the Gateway API
//! objects answer as the Ingresses did — except where the conversion declared a difference.

use portico_controller::convert::{convert, ConvertOptions, Difference};
use portico_controller::model::Object;

use crate::format::Scenario;
use crate::prepare::{translate_options, Plan};

/// The GatewayClass the converted Gateway names (Portico's controller).
fn gateway_class(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": {"controllerName": portico_controller::translate::gateway_api::status::GATEWAY_CONTROLLER},
    })
}

/// A scenario with its served Ingresses converted.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The scenario with the converted objects.
    pub scenario: Scenario,
    /// The differences the conversion declared.
    pub differences: Vec<Difference>,
    /// The Secret (`namespace/name`) the converted Gateway serves as the default certificate,
    /// which the scenario calls `default`.
    pub default_certificate: Option<String>,
}

/// `scenario` with its served Ingresses converted, and the differences the conversion declared.
/// Objects that do not parse stay as they are (the run reports them as it would).
pub fn converted(scenario: &Scenario) -> Converted {
    let options = ConvertOptions {
        translate: translate_options(portico_core::config::ForwardMode::Endpoint),
        ..ConvertOptions::default()
    };
    let parsed: Vec<Option<Object>> = scenario
        .objects
        .iter()
        .map(|v| Object::from_value(v.clone()).ok())
        .collect();
    let objects: Vec<Object> = parsed.iter().flatten().cloned().collect();
    let served =
        portico_controller::translate::ingress::served_ingresses(&objects, &options.translate);
    let conversion = convert(&objects, &options);
    let mut out = scenario.clone();
    out.objects = scenario
        .objects
        .iter()
        .zip(&parsed)
        .filter(|(_, o)| o.as_ref().is_none_or(|o| !served.contains(&o.object_ref())))
        .map(|(v, _)| v.clone())
        .collect();
    let has_class = out
        .objects
        .iter()
        .any(|v| v["kind"] == "GatewayClass" && v["metadata"]["name"] == options.class.as_str());
    if !has_class && !served.is_empty() {
        out.objects.push(gateway_class(&options.class));
    }
    if !served.is_empty() {
        out.objects.extend(conversion.objects);
    }
    Converted {
        scenario: out,
        differences: conversion.differences,
        default_certificate: conversion.default_certificate,
    }
}

/// The declared differences that cover a request (its host, over HTTPS or not).
pub fn declared<'a>(differences: &'a [Difference], plan: &Plan) -> Vec<&'a Difference> {
    let host = plan
        .authority
        .rsplit_once(':')
        .map_or(plan.authority.as_str(), |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                plan.authority.as_str()
            }
        });
    let sni = plan.tls.as_ref().and_then(|t| t.sni.clone());
    let https = plan.tls.is_some();
    differences
        .iter()
        .filter(|d| d.covers(host, https) || sni.as_deref().is_some_and(|s| d.covers(s, https)))
        .collect()
}
