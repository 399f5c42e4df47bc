//! CORS policies compiled for requests: Envoy's CORS filter (Gateway API, Istio) and
//! ingress-nginx's `enable-cors` template.

use crate::matching::string::Matcher;

/// A CORS policy ready for requests.
#[derive(Debug, Clone)]
pub struct CompiledCors {
    pub(crate) origins: Vec<Matcher>,
    pub(crate) policy: crate::config::Cors,
}

impl CompiledCors {
    /// Whether `origin` may make cross-origin requests (ingress-nginx style: any origin, even
    /// none, when no origin is listed; Envoy's: a non-empty origin matched by a listed matcher, or
    /// any non-empty origin when a listed matcher matches `*`).
    pub fn allows(&self, origin: &str) -> bool {
        if self.policy.nginx && self.origins.is_empty() {
            return true;
        }
        if origin.is_empty() {
            return false;
        }
        if self.policy.nginx {
            return self.origins.iter().any(|m| m.matches(origin));
        }
        // Envoy's CORS filter (`CorsFilter::isOriginAllowed`): an allowed-origin matcher that
        // matches the string `*` itself (an exact `*`, an empty prefix, `.*`) allows any origin.
        self.origins
            .iter()
            .any(|m| m.matches("*") || m.matches(origin))
    }

    /// ingress-nginx's behaviour (see [`crate::config::Cors::nginx`]).
    pub fn nginx(&self) -> bool {
        self.policy.nginx
    }

    /// ingress-nginx's CORS headers for an allowed request from `origin`, on every response.
    pub fn nginx_headers(&self, origin: &str) -> Vec<(String, String)> {
        let p = &self.policy;
        let allow_origin = if self.origins.is_empty() { "*" } else { origin };
        let mut out = vec![(
            "access-control-allow-origin".to_owned(),
            allow_origin.to_owned(),
        )];
        if p.allow_credentials {
            out.push(("access-control-allow-credentials".into(), "true".into()));
        }
        out.push((
            "access-control-allow-methods".into(),
            p.allow_methods.join(", "),
        ));
        out.push((
            "access-control-allow-headers".into(),
            p.allow_headers.join(", "),
        ));
        if let Some(e) = self.expose() {
            out.push(("access-control-expose-headers".into(), e));
        }
        if let Some(age) = p.max_age {
            out.push(("access-control-max-age".into(), age.to_string()));
        }
        out
    }

    /// Allow credentials.
    pub fn credentials(&self) -> bool {
        self.policy.allow_credentials
    }

    /// `Access-Control-Expose-Headers`, if any.
    pub fn expose(&self) -> Option<String> {
        (!self.policy.expose_headers.is_empty()).then(|| self.policy.expose_headers.join(", "))
    }

    /// The answer to a preflight from an allowed `origin` asking for `method` and `headers`.
    pub fn preflight(&self, origin: &str, method: &str, headers: &str) -> Vec<(String, String)> {
        self.preflight_headers(Some(origin), method, headers)
    }

    /// The answer to a preflight from an origin not allowed, when the policy answers it
    /// (`ignore_unmatched_preflights`): Envoy's CORS filter sends the same 200 without
    /// `Access-Control-Allow-Origin` (nor the expose list, which only an allowed origin gets).
    /// `None`: the preflight goes on to the backend.
    pub fn unmatched_preflight(
        &self,
        method: &str,
        headers: &str,
    ) -> Option<Vec<(String, String)>> {
        self.policy
            .ignore_unmatched_preflights
            .then(|| self.preflight_headers(None, method, headers))
    }

    fn preflight_headers(
        &self,
        origin: Option<&str>,
        method: &str,
        headers: &str,
    ) -> Vec<(String, String)> {
        let list = |configured: &[String], asked: &str| -> Option<String> {
            if configured.iter().any(|m| m == "*") {
                // A wildcard answers with what was asked (valid with credentials too), verbatim,
                // even when nothing was asked (Envoy's `CorsFilter::decodeHeaders` copies the
                // request's `access-control-request-headers` value, empty or not).
                Some(asked.to_owned())
            } else if configured.is_empty() {
                None
            } else {
                Some(configured.join(", "))
            }
        };
        let mut out: Vec<(String, String)> = origin
            .map(|o| ("access-control-allow-origin".to_owned(), o.to_owned()))
            .into_iter()
            .collect();
        if let Some(m) = list(&self.policy.allow_methods, method) {
            out.push(("access-control-allow-methods".into(), m));
        }
        if let Some(h) = list(&self.policy.allow_headers, headers) {
            out.push(("access-control-allow-headers".into(), h));
        }
        if let Some(e) = self.expose().filter(|_| origin.is_some()) {
            out.push(("access-control-expose-headers".into(), e));
        }
        if let Some(age) = self.policy.max_age {
            out.push(("access-control-max-age".into(), age.to_string()));
        }
        if self.policy.allow_credentials {
            out.push(("access-control-allow-credentials".into(), "true".into()));
        }
        out
    }
}
