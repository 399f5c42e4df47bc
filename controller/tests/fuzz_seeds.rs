//! The committed seeds of the `translate` fuzz target (`fuzz/corpus/translate/seed-*`, the
//! objects of the scenarios, written by `fuzz/make_translate_seeds.py`), replayed through the
//! check the fuzzer runs (`fuzz/checks/translate.rs`): `cargo test` keeps every seed, and every
//! finding turned into a seed, passing. See docs/fuzzing.md.

use std::path::Path;

mod translate {
    include!("../../fuzz/checks/translate.rs");
}

mod corpus {
    include!("../../fuzz/checks/seeds.rs");
}

#[test]
fn translate_seeds() {
    let seeds = corpus::seeds(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus"),
        "translate",
    );
    assert!(seeds.len() > 100, "translate seeds: {}", seeds.len());
    for (name, data) in seeds {
        // A seed that no longer parses would silently test nothing.
        let text = std::str::from_utf8(&data).unwrap();
        assert!(
            !portico_controller::source::documents(text)
                .unwrap()
                .is_empty(),
            "{name}"
        );
        translate::check(&data);
    }
}
