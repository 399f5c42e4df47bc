//! Envoy's HTTP connection manager rewrites `:path` before any filter sees it when
//! `normalize_path` and `merge_slashes` are on (as in every configuration Portico writes and in
//! istiod's and Envoy Gateway's): every routing decision is on its output. host-runner's Envoy
//! emulation and the explainer both use this one function.

/// Envoy's `normalize_path` + `merge_slashes` on a `:path`: merges slashes and resolves dot
/// segments (RFC 3986 §5.2.4); the query is kept as is.
pub fn normalize_path(path_and_query: &str) -> String {
    let (path, query) = match path_and_query.find('?') {
        Some(i) => (&path_and_query[..i], &path_and_query[i..]),
        None => (path_and_query, ""),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let trailing =
        path.len() > 1 && (path.ends_with('/') || path.ends_with("/.") || path.ends_with("/.."));
    for seg in segments {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut p = format!("/{}", out.join("/"));
    if trailing && p != "/" {
        p.push('/');
    }
    format!("{p}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        for (input, want) in [
            ("/a//b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../a", "/a"),
            ("/a/b/..", "/a/"),
            ("/a/", "/a/"),
            ("/", "/"),
            ("//", "/"),
            ("/a?x=/../y", "/a?x=/../y"),
        ] {
            assert_eq!(normalize_path(input), want, "{input}");
        }
    }
}
