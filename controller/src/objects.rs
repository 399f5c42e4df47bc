//! The old path of the object model, kept for the crates that use it: everything here is
//! re-exported from [`crate::model`], where each API group has its own module.

pub use crate::model::{
    describe_value, namespace_of, Endpoint, EndpointConditions, EndpointPort, EndpointSlice,
    HttpIngressPath, HttpIngressRuleValue, Ingress, IngressBackend, IngressClass, IngressClassSpec,
    IngressRule, IngressServiceBackend, IngressSpec, IngressTls, LabelSelector,
    LabelSelectorRequirement, Namespace, Object, ObjectError, ObjectMeta, ObjectRef, Pod, PodIp,
    PodStatus, Resource, Service, ServiceBackendPort, ServicePort, ServiceSpec,
};
