use super::{compile_anchored, to_lite};

fn matches(re2: &str, text: &str) -> bool {
    compile_anchored(re2)
        .unwrap_or_else(|e| panic!("{re2:?} ({:?}): {e}", to_lite(re2)))
        .is_match(text)
}

#[test]
fn perl_classes_are_ascii() {
    assert!(matches(r"/v\d+", "/v12"));
    assert!(
        !matches(r"/v\d+", "/v١٢"),
        "Arabic-Indic digits are not RE2's \\d"
    );
    assert!(matches(r"/\w+", "/abc_9"));
    assert!(!matches(r"/\w+", "/café"));
    assert!(matches(r"a\sb", "a\tb"));
    assert!(
        !matches(r"a\sb", "a\u{0b}b"),
        "RE2's \\s has no vertical tab"
    );
    assert!(matches(r"a\Sb", "a\u{0b}b"));
    assert!(matches(r"a[[:space:]]b", "a\u{0b}b"), "[[:space:]] has it");
    assert!(!matches(r"a\sb", "a\u{a0}b"));
    assert!(matches(r"\D+", "é"));
    assert!(matches(r"\W", "é"));
    assert!(matches(r"\S", "\u{a0}"));
}

#[test]
fn inside_classes_and_word_boundaries() {
    assert!(matches(r"[\d-]+", "12-3"));
    assert!(!matches(r"[\d-]+", "١"));
    assert!(matches(r"[a\D]", "é"));
    assert!(!matches(r"[a\D]", "5"));
    assert!(matches(r"[^\w]", "é"));
    assert!(matches(r"[\s]", "\n") && !matches(r"[\s]", "\u{0b}"));
    assert!(matches(r"[a\S]", "\u{0b}") && !matches(r"[a\S]", " "));
    assert!(matches(r".*\bcafé", "x café"));
    // RE2's \b is ASCII: between "caf" and "é" there is one.
    assert!(matches(r"caf\b.*", "café"));
    assert!(!matches(r"caf\B.*", "café"));
}

/// RE2 reads `[` inside a class, `&&` and `~~` as text; a `]` first in a class is a `]`.
#[test]
fn class_text_as_re2_reads_it() {
    assert!(matches(r"[[]", "["));
    assert!(matches(r"[a[b]+", "[ab"));
    assert!(matches(r"[a&&b]", "&") && matches(r"[a&&b]", "a"));
    assert!(matches(r"[a~~b]", "~"));
    assert!(matches(r"[]a]", "]") && matches(r"[^]a]", "b") && !matches(r"[^]a]", "]"));
    assert!(matches(r"[a-]", "-") && matches(r"[-a]", "-"));
    assert!(matches(r"[[:alpha:][:digit:]]+", "a1") && !matches(r"[[:^alpha:]]", "a"));
    assert!(matches(r"[\x41-\x{43}]+", "ABC"));
    assert!(matches(r"[\n]", "\n"));
}

#[test]
fn braces_that_are_not_repetitions_are_text() {
    assert!(matches(r"a{", "a{"));
    assert!(matches(r"a{x}", "a{x}"));
    assert!(matches(r"{", "{") && matches(r"}", "}"));
    assert!(matches(r"a{,2}", "a{,2}"));
    assert!(matches(r"a{2}", "aa") && !matches(r"a{2}", "a{2}"));
    assert!(matches(r"a{1,}", "aaa") && matches(r"a{1,2}b", "aab"));
    assert!(matches(r"a{1000}", &"a".repeat(1000)));
    for re in [
        r"a{1001}",
        r"a{2,1001}",
        r"a{1001,}",
        r"a{99999999999999999999}",
    ] {
        assert!(
            compile_anchored(re).is_err(),
            "{re}: RE2 refuses counts above 1 000"
        );
    }
}

#[test]
fn quoted_octal_and_hexadecimal_characters() {
    assert!(matches(r"\Q/a.b*\E/c", "/a.b*/c"));
    assert!(!matches(r"\Q/a.b\E", "/axb"));
    assert!(matches(r"\Qa.b", "a.b"), "\\Q runs to the end without \\E");
    assert!(matches(r"\101\0", "A\0"));
    assert!(matches(r"\x41\x{1F600}", "A😀"));
    assert!(
        compile_anchored(r"\1").is_err(),
        "back-references are not RE2"
    );
    assert!(compile_anchored(r"(a)\1").is_err());
}

/// RE2's `(?i)` folds by Unicode simple case folding.
#[test]
fn case_insensitive_folds_unicode() {
    assert!(matches("(?i)café", "CAFÉ"));
    assert!(matches("(?i)k", "\u{212A}"), "KELVIN SIGN folds to k");
    assert!(matches("(?i)s+", "sSſ"));
    assert!(matches("(?i)σ+", "Σσς"));
    assert!(matches("(?i)[a-z]+", "ſ\u{212A}"));
    assert!(!matches("(?i)[^k]", "\u{212A}"));
    assert!(matches("(?i)[à-þ]+", "ÀÉÞ"));
    assert!(matches(r"(?i)\x{e9}", "É"));
    assert!(matches(r"(?i)\Qé\E", "É"));
    assert!(matches(r"(?i)\w", "ſ") && !matches(r"(?i)\W", "ſ"));
    assert!(matches(r"(?i)[[:lower:]]", "\u{212A}"));
    assert!(!matches(r"(?i)[[:^alpha:]]", "\u{212A}"));
    assert!(matches(r"\w", "k") && !matches(r"\w", "\u{212A}"));
    // Scopes: a group's flags end with it; `(?-i)` turns folding off.
    assert!(matches("((?i)é)é", "Éé") && !matches("((?i)é)é", "ÉÉ"));
    assert!(matches("(?i:é)é", "Éé") && !matches("(?i:é)é", "ÉÉ"));
    assert!(matches("(?i)é(?-i)é", "Éé") && !matches("(?i)é(?-i)é", "ÉÉ"));
    assert!(!matches("é", "É"));
    assert!(matches("(?i)(?P<n>é)(?<m>k)", "É\u{212A}"));
}

#[test]
fn leaves_everything_else() {
    let lite = |re: &str| to_lite(re).unwrap();
    assert_eq!(lite(r"/a\.b"), r"/a\.b");
    assert_eq!(lite(r"\\d"), r"\\d", "an escaped backslash is not a class");
    assert_eq!(lite("/plain/[0-9]+"), "/plain/[0-9]+");
    assert_eq!(lite(r"/v\d+"), "/v[0-9]+");
    assert_eq!(lite(r"(?P<x>[a-z]+)"), r"(?P<x>[a-z]+)");
    assert_eq!(
        lite(r"/a+?b*?"),
        r"/a+?b*?",
        "lazy repetitions are single operators"
    );
    for re in [
        "(",
        "[a",
        r"\p{Greek}",
        r"\pL",
        "a**",
        "a+*",
        "a{2}{3}",
        "a*?+",
        r"\8",
    ] {
        assert!(compile_anchored(re).is_err(), "{re} compiled");
    }
}

/// For patterns both read alike, every match equals the `regex` crate's with its Unicode case
/// folding (the crate RE2-compatible routing used before, `regex-syntax`'s tables).
#[test]
fn matches_equal_the_regex_crate_s_where_both_read_re2() {
    let patterns = [
        "(?i)café",
        "(?i)k+",
        "(?i)[a-z]+",
        "(?i)[^a-z]",
        "(?i)[à-ÿ]+",
        "(?i)σ+",
        "(?i:ß)s",
        "((?i)é)é",
        "(?i)é(?-i)é",
        "(?i)(?:é|k)+",
        "(?i)[k-s]+",
        "[k-s]+",
        "a|(?i)K",
        "(?i)[^é-ê]",
        "(?i)[ſ]",
        r"(?i)[\x{212A}]",
        "(?i).s.",
        "[^a]*é",
        "(?s).",
        ".",
        "(?i)/API/[0-9]{1,2}",
    ];
    let alphabet = [
        'a', 'A', 'k', 'K', '\u{212A}', 's', 'S', 'ſ', 'é', 'É', 'ê', 'σ', 'Σ', 'ς', 'ß', 'ẞ', '/',
        '1', '\n', 'ÿ', 'Ÿ',
    ];
    let mut texts = vec![String::new()];
    for len in 1..=3 {
        let mut next = Vec::new();
        for t in texts.iter().filter(|t| t.chars().count() == len - 1) {
            for c in alphabet {
                next.push(format!("{t}{c}"));
            }
        }
        texts.extend(next);
    }
    texts.push("/api/12".into());
    texts.push("/ApI/7".into());
    for re in patterns {
        let ours = compile_anchored(re).unwrap();
        let reference = regex::Regex::new(&format!("^(?:{re})$")).unwrap();
        for t in &texts {
            assert_eq!(
                ours.is_match(t),
                reference.is_match(t),
                "{re:?} on {t:?} (rewritten {:?})",
                to_lite(re)
            );
        }
    }
}

#[test]
fn complements_ranges_in_any_order() {
    assert_eq!(
        super::complement(&[(5, 10), (0, 2), (8, 20), (9, 9)]),
        [(3, 4), (21, 0x10_FFFF)]
    );
    assert_eq!(super::complement(&[(0, 0x10_FFFF)]), []);
    assert_eq!(super::complement(&[]), [(0, 0x10_FFFF)]);
}
