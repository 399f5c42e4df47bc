//! [`Options`]: how `translate` selects objects and forwards requests.

use portico_core::config::ForwardMode;

/// The controller name Portico claims in IngressClass objects.
pub const CONTROLLER_NAME: &str = "portico.dev/ingress-controller";

/// How `translate` selects and forwards.
#[derive(Debug, Clone)]
pub struct Options {
    /// IngressClass `spec.controller` values served (Portico's own, and ingress-nginx's so a
    /// cluster can switch without editing its IngressClasses).
    pub controllers: Vec<String>,
    /// Class names served when no IngressClass object of that name exists.
    pub class_names: Vec<String>,
    /// Serve Ingresses that name no class when no default IngressClass exists.
    pub watch_without_class: bool,
    /// How the filter hands requests to Envoy.
    pub forward: ForwardMode,
    /// Also translate the sidecar's outbound (mesh) routing. Off by default: a gateway's
    /// configuration then carries only the backends its routes use.
    pub mesh: bool,
    /// The current time (seconds since the epoch), for reporting expired certificates (served
    /// all the same, as ingress-nginx and Istio do); `None`: not checked. `translate` reads no
    /// clock itself.
    pub now: Option<i64>,
    /// The Secrets come without their private keys (the explainer in the browser, where nobody
    /// pastes a key): a certificate Secret with no key is read for its names and dates, and its
    /// key is not checked. Off everywhere a proxy is configured.
    pub keys_withheld: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            controllers: vec![
                CONTROLLER_NAME.to_owned(),
                "k8s.io/ingress-nginx".to_owned(),
            ],
            class_names: vec!["portico".to_owned(), "nginx".to_owned()],
            watch_without_class: true,
            forward: ForwardMode::Endpoint,
            mesh: false,
            now: None,
            keys_withheld: false,
        }
    }
}

/// The current time in seconds since the epoch, for [`Options::now`]; `None` where the platform
/// has no clock (`wasm32-unknown-unknown`, whose `SystemTime::now` panics: the browser passes
/// its own).
pub fn now() -> Option<i64> {
    if cfg!(all(target_arch = "wasm32", target_os = "unknown")) {
        return None;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
}
