// The committed seeds of a fuzz target, for the tests that replay them: every
// `fuzz/corpus/<target>/seed-*` file, sorted, with its contents. `corpus` is the path of
// `fuzz/corpus`. Included by `filters/core/tests/fuzz_seeds.rs` and
// `controller/tests/fuzz_seeds.rs`.

/// The seeds of `target` under `corpus`; panics when there are none.
pub fn seeds(corpus: &std::path::Path, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus.join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))
        })
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}
