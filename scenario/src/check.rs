//! The check of what a host observed against what a request expects.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::format::{Echo, Expect, Observed};

/// Checks every observation of one request (one, or `repeat` of them) against its expectations.
/// Returns one message per unmet expectation, each with expected vs got.
pub fn check(
    expect: &Expect,
    observed: &[Observed],
    backends: &HashMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let backend_of = |o: &Observed| -> Result<String, String> {
        let echo = o.echo.as_ref().ok_or_else(|| o.summary())?;
        match backends.get(&echo.endpoint) {
            Some(set) if set.len() == 1 => Ok(set.iter().next().cloned().unwrap_or_default()),
            Some(set) => Err(format!(
                "endpoint {} serves several backends {set:?}; give them distinct addresses",
                echo.endpoint
            )),
            None => Err(format!("endpoint {} is in no EndpointSlice", echo.endpoint)),
        }
    };
    let forwarded = expect.backend.is_some()
        || expect.endpoint.is_some()
        || expect.endpoint_in.is_some()
        || expect.upstream.is_some();
    for (i, o) in observed.iter().enumerate() {
        let at = if observed.len() > 1 {
            format!("[{i}] ")
        } else {
            String::new()
        };
        let mut fail = |m: String| failures.push(format!("{at}{m}"));
        if let Some(want) = &expect.certificate {
            let got = o.certificate.as_ref();
            let ok = match got {
                None => want == "none",
                Some(names) => names.iter().any(|n| n == want),
            };
            if !ok {
                fail(format!(
                    "certificate: expected {want}, got {}",
                    got.map_or_else(|| format!("none ({})", o.summary()), |n| n.join(" | "))
                ));
            }
        }
        if let Some(want) = &expect.connection {
            if o.connection.as_ref() != Some(want) {
                fail(format!(
                    "connection: expected {want}, got {}",
                    o.connection
                        .clone()
                        .map_or_else(|| o.summary(), |c| format!("{c} ({})", o.summary()))
                ));
            }
        }
        let want_status = expect.status.or(if forwarded { Some(200) } else { None });
        if let Some(want) = want_status {
            if o.status != Some(want) {
                fail(format!("status: expected {want}, got {}", o.summary()));
            }
        }
        if let Some(want) = &expect.backend {
            match backend_of(o) {
                Ok(got) if &got == want => {}
                Ok(got) => fail(format!("backend: expected {want}, got {got}")),
                Err(e) => fail(format!("backend: expected {want}, got {e}")),
            }
        }
        let endpoint = o.echo.as_ref().map(|e| e.endpoint.clone());
        if let Some(want) = &expect.endpoint {
            if endpoint.as_ref() != Some(want) {
                fail(format!(
                    "endpoint: expected {want}, got {}",
                    endpoint.clone().unwrap_or_else(|| o.summary())
                ));
            }
        }
        if let Some(set) = &expect.endpoint_in {
            if !endpoint.as_ref().is_some_and(|e| set.contains(e)) {
                fail(format!(
                    "endpoint_in: expected one of {set:?}, got {}",
                    endpoint.clone().unwrap_or_else(|| o.summary())
                ));
            }
        }
        if let Some(want) = &expect.location {
            let got = o.header("location");
            if got != Some(want.as_str()) {
                fail(format!("location: expected {want:?}, got {got:?}"));
            }
        }
        if let Some(want) = &expect.body {
            let got = String::from_utf8_lossy(&o.body);
            if got != *want {
                fail(format!("body: expected {want:?}, got {got:?}"));
            }
        }
        for (k, want) in &expect.response_headers {
            let got = o.header(k);
            if got != Some(want.as_str()) {
                fail(format!(
                    "response header {k}: expected {want:?}, got {got:?}"
                ));
            }
        }
        if let Some(up) = &expect.upstream {
            match &o.echo {
                None => fail(format!(
                    "upstream: expected the request at a backend, got {}",
                    o.summary()
                )),
                Some(echo) => {
                    if let Some(want) = &up.path {
                        if &echo.path != want {
                            fail(format!(
                                "upstream path: expected {want:?}, got {:?}",
                                echo.path
                            ));
                        }
                    }
                    if let Some(want) = &up.host {
                        if &echo.host != want {
                            fail(format!(
                                "upstream host: expected {want:?}, got {:?}",
                                echo.host
                            ));
                        }
                    }
                    for (k, want) in &up.headers {
                        let got = echo.header(k);
                        if got != Some(want.as_str()) {
                            fail(format!(
                                "upstream header {k}: expected {want:?}, got {got:?}"
                            ));
                        }
                    }
                    for k in &up.absent_headers {
                        if let Some(got) = echo.header(k) {
                            fail(format!("upstream header {k}: expected absent, got {got:?}"));
                        }
                    }
                }
            }
        }
    }
    if let Some(want) = &expect.mirror {
        let copies: Vec<&Echo> = observed.iter().flat_map(|o| &o.mirrored).collect();
        let reached = copies.iter().any(|c| {
            backends
                .get(&c.endpoint)
                .is_some_and(|set| set.contains(want))
        });
        if !reached {
            let got: Vec<String> = copies
                .iter()
                .map(|c| format!("{} (host {})", c.endpoint, c.host))
                .collect();
            failures.push(format!(
                "mirror: expected a copy at {want}, got {}",
                if got.is_empty() {
                    "no copy".to_owned()
                } else {
                    got.join(", ")
                }
            ));
        }
    }
    if expect.same_endpoint == Some(true) {
        let set: BTreeSet<_> = observed
            .iter()
            .map(|o| o.echo.as_ref().map(|e| e.endpoint.clone()))
            .collect();
        if set.len() != 1 || set.contains(&None) {
            failures.push(format!(
                "same_endpoint: expected one endpoint for all {}, got {set:?}",
                observed.len()
            ));
        }
    }
    if let Some(dist) = &expect.distribution {
        let tolerance = expect.tolerance.unwrap_or(0.05);
        let by_endpoint = dist.keys().all(|k| backends.contains_key(k));
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for o in observed {
            let key = if by_endpoint {
                o.echo
                    .as_ref()
                    .map(|e| e.endpoint.clone())
                    .unwrap_or_else(|| o.summary())
            } else {
                backend_of(o).unwrap_or_else(|e| e)
            };
            *counts.entry(key).or_default() += 1;
        }
        let n = observed.len().max(1) as f64;
        for (k, want) in dist {
            let got = counts.get(k).copied().unwrap_or(0) as f64 / n;
            if (got - want).abs() > tolerance {
                failures.push(format!("distribution {k}: expected {want:.3}±{tolerance}, got {got:.3} (all: {counts:?})"));
            }
        }
        let stray: Vec<_> = counts.keys().filter(|k| !dist.contains_key(*k)).collect();
        if !stray.is_empty() {
            failures.push(format!(
                "distribution: requests outside the expected keys: {counts:?}"
            ));
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_report_expected_and_got() {
        let backends: HashMap<_, _> = [(
            "127.0.0.2:80".to_owned(),
            BTreeSet::from(["a.default.svc.cluster.local:80".to_owned()]),
        )]
        .into();
        let echo = Echo {
            endpoint: "127.0.0.2:80".into(),
            method: "GET".into(),
            path: "/x".into(),
            host: "h".into(),
            headers: vec![],
        };
        let ok = Observed {
            status: Some(200),
            echo: Some(echo),
            ..Observed::default()
        };
        let expect = Expect {
            backend: Some("a.default.svc.cluster.local:80".into()),
            ..Expect::default()
        };
        assert!(check(&expect, std::slice::from_ref(&ok), &backends).is_empty());
        let expect = Expect {
            backend: Some("b.default.svc.cluster.local:80".into()),
            ..Expect::default()
        };
        let f = check(&expect, std::slice::from_ref(&ok), &backends);
        assert_eq!(f, ["backend: expected b.default.svc.cluster.local:80, got a.default.svc.cluster.local:80"]);
        let not_found = Observed {
            status: Some(404),
            body: b"nope".to_vec(),
            ..Observed::default()
        };
        let f = check(
            &Expect {
                status: Some(200),
                ..Expect::default()
            },
            &[not_found],
            &backends,
        );
        assert_eq!(f, ["status: expected 200, got 404 \"nope\""]);
    }
}
