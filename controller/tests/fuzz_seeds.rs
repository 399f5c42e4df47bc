//! The committed seeds of the `translate` fuzz target (`fuzz/corpus/translate/seed-*`, the
//! objects of the scenarios, written by `fuzz/make_translate_seeds.py`), replayed through the
//! check the fuzzer runs (`fuzz/checks/translate.rs`): `cargo test` keeps every seed, and every
//! finding turned into a seed, passing. See docs/fuzzing.md.

use std::path::Path;

mod translate {
    include!("../../fuzz/checks/translate.rs");
}

#[test]
fn translate_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/translate");
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))
        })
        .collect();
    seeds.sort();
    assert!(
        seeds.len() > 100,
        "seeds in {}: {}",
        dir.display(),
        seeds.len()
    );
    for seed in seeds {
        let data = std::fs::read(&seed).unwrap();
        // A seed that no longer parses would silently test nothing.
        let text = std::str::from_utf8(&data).unwrap();
        assert!(
            !portico_controller::source::documents(text)
                .unwrap()
                .is_empty(),
            "{}",
            seed.display()
        );
        translate::check(&data);
    }
}
