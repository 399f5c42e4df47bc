// The RE2 reader (`matching::re2`) on arbitrary patterns: the input is a pattern, a NUL, then a
// text. Reading and compiling a pattern never panics; a pattern that compiles matches the text
// without panicking, anchored or not, and the anchored form accepts the text only if the
// unanchored one finds a match in it.
//
// Included by the fuzz target and by `filters/core/tests/fuzz_seeds.rs`, which replays the
// committed seeds in `cargo test`.
use portico_core::matching::re2;

/// Runs one input; panics on a broken promise.
pub fn check(data: &[u8]) {
    let (pattern, text) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let (Ok(pattern), Ok(text)) = (std::str::from_utf8(pattern), std::str::from_utf8(text)) else {
        return;
    };
    // Bounded like a configuration's patterns: the engine's size limit refuses the rest.
    if pattern.len() > 512 || text.len() > 4096 {
        return;
    }
    let _ = re2::to_lite(pattern);
    let anchored = re2::compile_anchored(pattern);
    let unanchored = re2::compile(pattern);
    if let (Ok(a), Ok(u)) = (&anchored, &unanchored) {
        if a.is_match(text) {
            assert!(u.is_match(text), "{pattern:?} matches {text:?} anchored only");
        }
    }
}
