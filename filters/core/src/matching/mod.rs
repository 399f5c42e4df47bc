//! Matching shared by every filter: hosts (exact, wildcard, catch-all), paths (segment-wise
//! prefixes, exact paths), string matches (exact, prefix, regex, present) and address ranges.
//! Pure functions and tables; no policy.

pub mod casefold;
pub mod cidr;
pub mod host;
pub mod path;
pub mod re2;
pub mod string;

/// Whether two header names are the same name (ASCII case ignored): `str::eq_ignore_ascii_case`,
/// written as a plain loop with the lengths compared first. A header lookup scans the whole map
/// and most names differ in length; in the size-optimized module the standard one cost ~180
/// instructions per call (host-runner's count).
pub fn same_header_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if !a[i].eq_ignore_ascii_case(&b[i]) {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_names_compare_ignoring_ascii_case_only() {
        use super::same_header_name as same;
        assert!(same("x-tenant", "X-Tenant"));
        assert!(same("", ""));
        assert!(!same("x-tenant", "x-tenan"));
        assert!(!same("x-tenant", "x-tenanu"));
        // Only ASCII letters fold: `É` is not `é`, and `[` is not `{`.
        assert!(!same("x-É", "x-é"));
        assert!(!same("a[", "a{"));
        for (a, b) in [("Accept", "aCCEPT"), ("k", "K"), ("x-1", "x-2")] {
            assert_eq!(same(a, b), a.eq_ignore_ascii_case(b), "{a} {b}");
        }
    }
}
