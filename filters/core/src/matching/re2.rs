//! RE2's meaning of a pattern, in the `regex` crate's syntax.
//!
//! Envoy's `safe_regex`, Istio's `regex` matches and the Gateway API's `RegularExpression`
//! matches (as Envoy Gateway and Istio implement them) are RE2. The `regex` crate reads the same
//! syntax, with one difference that changes matches: RE2's Perl classes and word boundary are
//! ASCII — `\d` is `[0-9]`, `\s` is `[\t\n\f\r ]`, `\w` is `[0-9A-Za-z_]`, `\b` is an ASCII word
//! boundary (RE2's syntax reference) — where the crate's are Unicode-aware (`\d` also matches
//! `٣`, `\w` matches `é`). [`to_rust`] rewrites those to their ASCII forms, inside and outside
//! bracketed classes, through `regex-syntax`'s own parser and printer, so nothing else in the
//! pattern moves. `\B` stays as the crate reads it: its ASCII form can match inside a UTF-8
//! sequence, which the crate refuses for text.

use regex_syntax::ast::{
    parse::Parser, print::Printer, AssertionKind, Ast, ClassBracketed, ClassPerlKind, ClassSet,
    ClassSetItem,
};

/// `re` (RE2 syntax) with RE2's meaning in the `regex` crate's syntax. A pattern that does not
/// parse is returned as it is: compiling it reports the error.
pub fn to_rust(re: &str) -> String {
    // Nothing to rewrite without a backslash (the common case: no parse, no allocation beyond
    // the copy).
    if !re.contains('\\') {
        return re.to_owned();
    }
    let Ok(mut parsed) = Parser::new().parse(re) else {
        return re.to_owned();
    };
    if !rewrite(&mut parsed) {
        return re.to_owned();
    }
    let mut out = String::with_capacity(re.len() + 16);
    match Printer::new().print(&parsed, &mut out) {
        Ok(()) => out,
        Err(_) => re.to_owned(),
    }
}

/// Rewrites the Perl classes and `\b` under `ast`; whether anything changed.
fn rewrite(ast: &mut Ast) -> bool {
    match ast {
        Ast::ClassPerl(c) => match ascii_class(&c.kind, c.negated) {
            Some(class) => {
                *ast = Ast::ClassBracketed(Box::new(class));
                true
            }
            None => false,
        },
        Ast::Assertion(a) if a.kind == AssertionKind::WordBoundary => {
            match Parser::new().parse(r"(?-u:\b)") {
                Ok(ascii) => {
                    *ast = ascii;
                    true
                }
                Err(_) => false,
            }
        }
        Ast::ClassBracketed(b) => rewrite_set(&mut b.kind),
        Ast::Repetition(r) => rewrite(&mut r.ast),
        Ast::Group(g) => rewrite(&mut g.ast),
        Ast::Alternation(a) => a.asts.iter_mut().fold(false, |c, x| rewrite(x) | c),
        Ast::Concat(c) => c.asts.iter_mut().fold(false, |ch, x| rewrite(x) | ch),
        _ => false,
    }
}

fn rewrite_set(set: &mut ClassSet) -> bool {
    match set {
        ClassSet::Item(item) => rewrite_item(item),
        ClassSet::BinaryOp(op) => rewrite_set(&mut op.lhs) | rewrite_set(&mut op.rhs),
    }
}

fn rewrite_item(item: &mut ClassSetItem) -> bool {
    match item {
        // Inside a class, a Perl class becomes a nested class: `[a\D]` → `[a[^0-9]]`.
        ClassSetItem::Perl(c) => match ascii_class(&c.kind, c.negated) {
            Some(class) => {
                *item = ClassSetItem::Bracketed(Box::new(class));
                true
            }
            None => false,
        },
        ClassSetItem::Bracketed(b) => rewrite_set(&mut b.kind),
        ClassSetItem::Union(u) => u.items.iter_mut().fold(false, |c, i| rewrite_item(i) | c),
        _ => false,
    }
}

/// RE2's ASCII class for a Perl class, as a bracketed class.
fn ascii_class(kind: &ClassPerlKind, negated: bool) -> Option<ClassBracketed> {
    let set = match kind {
        ClassPerlKind::Digit => "0-9",
        ClassPerlKind::Space => r"\t\n\f\r ",
        ClassPerlKind::Word => "0-9A-Za-z_",
    };
    let text = format!("[{}{set}]", if negated { "^" } else { "" });
    match Parser::new().parse(&text) {
        Ok(Ast::ClassBracketed(ref b)) => Some((**b).clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::to_rust;

    fn matches(re2: &str, text: &str) -> bool {
        regex::Regex::new(&format!("^(?:{})$", to_rust(re2)))
            .unwrap()
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
        assert!(matches(r".*\bcafé", "x café"));
        // RE2's \b is ASCII: between "caf" and "é" there is one.
        assert!(matches(r"caf\b.*", "café"));
    }

    #[test]
    fn leaves_everything_else() {
        for re in [
            r"/a\.b",
            r"(?i)/users/[0-9]+",
            r"\\d",
            r"a{2,3}\z",
            r"(?P<x>[[:alpha:]]+)",
        ] {
            let rust = to_rust(re);
            assert!(
                regex::Regex::new(&rust).is_ok(),
                "{re} became {rust}, which does not compile"
            );
        }
        assert_eq!(to_rust(r"/a\.b"), r"/a\.b");
        assert_eq!(
            to_rust(r"\\d"),
            r"\\d",
            "an escaped backslash is not a class"
        );
        assert_eq!(to_rust("/plain/[0-9]+"), "/plain/[0-9]+");
        assert_eq!(to_rust(r"/v\d+"), "/v[0-9]+");
        assert_eq!(
            to_rust("("),
            "(",
            "what does not parse is left for the compile to report"
        );
    }
}
