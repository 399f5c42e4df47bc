//! RE2 patterns, compiled with RE2's meaning.
//!
//! Envoy's `safe_regex`, Istio's `regex` matches and the Gateway API's `RegularExpression`
//! matches (as Envoy Gateway and Istio implement them) are RE2. The filters match with the
//! `regex-lite` crate (a Pike VM and a bounded backtracker with no Unicode tables: a fraction of
//! the `regex` crate's size in a wasm module), which reads nearly the same syntax. [`to_lite`]
//! rewrites a pattern where the two read it differently, following RE2's parser
//! (`re2/parse.cc`) and syntax reference:
//!
//! - `\s` is `[\t\n\f\r ]` in RE2 — no vertical tab, which `regex-lite`'s has; `\d`, `\w`, `\b`
//!   and `\B` are ASCII in both.
//! - `(?i)` folds by Unicode simple case folding in RE2 (`(?i)é` matches `É`, `(?i)k` matches
//!   U+212A KELVIN SIGN); `regex-lite` folds ASCII letters only. Under `(?i)` each literal and
//!   each class gets the other members of its characters' orbits ([`super::casefold`]).
//! - `\Q…\E` quotes literal text; `\123` is an octal character (`\1`–`\7` alone are
//!   back-references, which RE2 refuses); `\x{…}` and `\xHH` are characters (folded too).
//! - Inside a class, `[` (other than `[:name:]`), `&&` and `~~` are literal text, not nested
//!   classes or set operations.
//! - A `{` or `}` that does not make a counted repetition (`a{`, `{x}`) is a literal; a count
//!   above 1 000 is an error, as in RE2.
//!
//! What RE2 has and this does not — Unicode classes (`\pL`, `\p{Greek}`) — fails to compile,
//! with the regex engine's message.

use super::casefold;

/// A compiled pattern.
pub type Regex = regex_lite::Regex;

/// Compiles `re` (RE2 syntax) unanchored; the error is the regex engine's message.
pub fn compile(re: &str) -> Result<Regex, String> {
    Regex::new(&to_lite(re)?).map_err(|e| e.to_string())
}

/// Compiles `re` (RE2 syntax) anchored at both ends: the whole text must match, as in Envoy's
/// `safe_regex` and the Gateway API.
pub fn compile_anchored(re: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{})$", to_lite(re)?)).map_err(|e| e.to_string())
}

/// `re` (RE2 syntax) with RE2's meaning in `regex-lite`'s syntax. A repetition of a repetition
/// (`a**`, `a+?*`, `a{2}{3}`), which RE2 refuses and `regex-lite` reads, is an error here; what
/// else is not valid RE2 is passed on as it is, for the compile to report.
pub fn to_lite(re: &str) -> Result<String, String> {
    let mut w = Writer {
        chars: re.chars().collect(),
        at: 0,
        out: String::with_capacity(re.len() + 8),
        fold: false,
        groups: Vec::new(),
    };
    w.pattern()?;
    Ok(w.out)
}

/// The largest count RE2 reads in `{n,m}`.
const MAX_REPEAT: u64 = 1000;

/// An ASCII class's ranges.
type Ranges = &'static [(char, char)];

/// RE2's Perl classes (`\s` has no vertical tab).
fn perl(e: char) -> Ranges {
    match e {
        'd' | 'D' => &[('0', '9')],
        's' | 'S' => &[('\t', '\n'), ('\x0C', '\r'), (' ', ' ')],
        _ => &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')],
    }
}

/// RE2's POSIX classes.
const POSIX: &[(&str, Ranges)] = &[
    ("alnum", &[('0', '9'), ('A', 'Z'), ('a', 'z')]),
    ("alpha", &[('A', 'Z'), ('a', 'z')]),
    ("ascii", &[('\0', '\x7F')]),
    ("blank", &[('\t', '\t'), (' ', ' ')]),
    ("cntrl", &[('\0', '\x1F'), ('\x7F', '\x7F')]),
    ("digit", &[('0', '9')]),
    ("graph", &[('!', '~')]),
    ("lower", &[('a', 'z')]),
    ("print", &[(' ', '~')]),
    ("punct", &[('!', '/'), (':', '@'), ('[', '`'), ('{', '~')]),
    ("space", &[('\t', '\r'), (' ', ' ')]),
    ("upper", &[('A', 'Z')]),
    ("word", &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')]),
    ("xdigit", &[('0', '9'), ('A', 'F'), ('a', 'f')]),
];

/// The code points not in `items` (ranges in any order, overlapping or not). A few dozen
/// ranges at most: each step takes the lowest range not yet passed, without a sort (a sort is
/// kilobytes of code in the module).
fn complement(items: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut next = 0u32;
    while let Some(&(lo, hi)) = items
        .iter()
        .filter(|&&(_, hi)| hi >= next)
        .min_by_key(|&&(lo, _)| lo)
    {
        if lo > next {
            out.push((next, lo - 1));
        }
        next = hi + 1;
    }
    if next <= 0x10_FFFF {
        out.push((next, 0x10_FFFF));
    }
    out
}

struct Writer {
    chars: Vec<char>,
    at: usize,
    out: String,
    /// Whether `(?i)` is in effect.
    fold: bool,
    /// `fold` outside each open group.
    groups: Vec<bool>,
}

impl Writer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn copy(&mut self, n: usize) {
        let end = (self.at + n).min(self.chars.len());
        self.out.extend(&self.chars[self.at..end]);
        self.at = end;
    }

    fn pattern(&mut self) -> Result<(), String> {
        // Whether the last thing written was a repetition operator.
        let mut repeated = false;
        while let Some(c) = self.peek(0) {
            let repetition = match c {
                '*' | '+' | '?' => Some(1),
                '{' => self.repetition_len(),
                _ => None,
            };
            if let Some(mut n) = repetition {
                let op: String = self.chars[self.at..self.at + n].iter().collect();
                if repeated {
                    return Err(format!("bad repetition operator: {op} after a repetition"));
                }
                // RE2's `kMaxRepeat`: a count above 1 000 is refused.
                let mut counts = op.trim_matches(['{', '}']).split(',');
                if c == '{'
                    && counts
                        .any(|c| !c.is_empty() && c.parse::<u64>().map_or(true, |c| c > MAX_REPEAT))
                {
                    return Err(format!(
                        "bad repetition operator: {op} (counts above {MAX_REPEAT})"
                    ));
                }
                if self.peek(n) == Some('?') {
                    n += 1;
                }
                self.copy(n);
                repeated = true;
                continue;
            }
            repeated = false;
            match c {
                '\\' => self.escape(),
                '[' => self.class(),
                '(' => self.open(),
                ')' => {
                    self.copy(1);
                    if let Some(outer) = self.groups.pop() {
                        self.fold = outer;
                    }
                }
                '{' => {
                    self.at += 1;
                    self.out.push_str(r"\{");
                }
                '}' => {
                    self.at += 1;
                    self.out.push_str(r"\}");
                }
                '.' | '^' | '$' | '|' => self.copy(1),
                c => {
                    self.at += 1;
                    self.literal(c);
                }
            }
        }
        Ok(())
    }

    /// The length of the counted repetition `{n}`, `{n,}` or `{n,m}` at the cursor, if it is one.
    fn repetition_len(&self) -> Option<usize> {
        let rest = &self.chars[self.at + 1..];
        let close = rest.iter().position(|&c| c == '}')?;
        let inner: String = rest[..close].iter().collect();
        let (min, max) = match inner.split_once(',') {
            Some((min, max)) => (min, Some(max)),
            None => (inner.as_str(), None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (digits(min) && max.is_none_or(|m| m.is_empty() || digits(m))).then_some(close + 2)
    }

    fn open(&mut self) {
        self.groups.push(self.fold);
        if self.peek(1) != Some('?') {
            self.copy(1);
            return;
        }
        // `(?P<name>` and `(?<name>` are copied as they are.
        let name_at = if self.peek(2) == Some('P') { 3 } else { 2 };
        if self.peek(name_at) == Some('<') {
            let close = self.chars[self.at..].iter().position(|&c| c == '>');
            return self.copy(close.map_or(name_at + 1, |c| c + 1));
        }
        // `(?flags)` or `(?flags:`.
        let mut n = 2;
        let mut fold = self.fold;
        let mut negate = false;
        while let Some(c) = self.peek(n) {
            match c {
                '-' => negate = true,
                'i' => fold = !negate,
                'm' | 's' | 'U' => {}
                ')' => {
                    // Flags for the rest of the enclosing group: no group of their own.
                    self.groups.pop();
                    self.fold = fold;
                    self.copy(n + 1);
                    return;
                }
                ':' => {
                    self.fold = fold;
                    self.copy(n + 1);
                    return;
                }
                _ => break,
            }
            n += 1;
        }
        self.copy(2);
    }

    /// A character outside a class.
    fn literal(&mut self, c: char) {
        if self.fold && casefold::others(c).any(|o| !o.is_ascii()) {
            self.out.push('[');
            push_char(&mut self.out, c);
            for o in casefold::others(c) {
                push_char(&mut self.out, o);
            }
            self.out.push(']');
        } else {
            push_char(&mut self.out, c);
        }
    }

    /// An escape outside a class.
    fn escape(&mut self) {
        let Some(e) = self.peek(1) else {
            return self.copy(1);
        };
        match e {
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                self.at += 2;
                self.set(perl(e), e.is_ascii_uppercase(), false);
            }
            // A Unicode class: not supported; copied whole for the compile to name it.
            'p' | 'P' => {
                let len = match self.peek(2) {
                    Some('{') => self.chars[self.at..]
                        .iter()
                        .position(|&c| c == '}')
                        .map_or(3, |c| c + 1),
                    _ => 3,
                };
                self.copy(len);
            }
            'Q' => {
                self.at += 2;
                while let Some(c) = self.peek(0) {
                    if c == '\\' && self.peek(1) == Some('E') {
                        self.at += 2;
                        break;
                    }
                    self.at += 1;
                    self.literal(c);
                }
            }
            _ => match self.escaped_char() {
                Some(c) => self.literal(c),
                None => self.copy(2),
            },
        }
    }

    /// The character an escape at the cursor stands for, consuming it: escaped punctuation, an
    /// octal or a hexadecimal character. `None` (nothing consumed) for a class, an assertion,
    /// a control-character escape or what is not valid.
    fn escaped_char(&mut self) -> Option<char> {
        let e = self.peek(1)?;
        match e {
            c if c.is_ascii_punctuation() => {
                self.at += 2;
                Some(c)
            }
            '0'..='7' => {
                let mut n = 1;
                while n < 3 && self.peek(1 + n).is_some_and(|d| ('0'..='7').contains(&d)) {
                    n += 1;
                }
                // `\1`–`\7` alone are back-references: RE2 refuses them, as does the engine.
                if e != '0' && n == 1 {
                    return None;
                }
                let digits: String = self.chars[self.at + 1..self.at + 1 + n].iter().collect();
                let c = char::from_u32(u32::from_str_radix(&digits, 8).ok()?)?;
                self.at += 1 + n;
                Some(c)
            }
            'x' => {
                let (digits, len) = if self.peek(2) == Some('{') {
                    let rest = &self.chars[self.at + 3..];
                    let close = rest.iter().position(|&c| c == '}')?;
                    (rest[..close].iter().collect::<String>(), close + 4)
                } else {
                    let two = self.chars.get(self.at + 2..self.at + 4)?;
                    (two.iter().collect::<String>(), 4)
                };
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                let c = char::from_u32(u32::from_str_radix(&digits, 16).ok()?)?;
                self.at += len;
                Some(c)
            }
            _ => None,
        }
    }

    /// A bracketed class, RE2's way: a `]` first is literal, `[:name:]` is an ASCII class, any
    /// other `[` is literal.
    fn class(&mut self) {
        let start = self.at;
        let out_start = self.out.len();
        self.copy(1);
        if self.peek(0) == Some('^') {
            self.copy(1);
        }
        let mut first = true;
        loop {
            let Some(c) = self.peek(0) else {
                // Unclosed: give the rest back as it was, for the compile to report.
                self.out.truncate(out_start);
                self.at = start;
                return self.copy(self.chars.len() - start);
            };
            match c {
                ']' if !first => {
                    self.copy(1);
                    return;
                }
                '[' if self.peek(1) == Some(':') => match self.posix() {
                    Some((ranges, negated, len)) => {
                        self.at += len;
                        self.set(ranges, negated, true);
                    }
                    None => self.class_item(),
                },
                '\\' if self.peek(1).is_some_and(|e| "dDsSwW".contains(e)) => {
                    let e = self.chars[self.at + 1];
                    self.at += 2;
                    self.set(perl(e), e.is_ascii_uppercase(), true);
                }
                _ => self.class_item(),
            }
            first = false;
        }
    }

    /// The ASCII class `[:name:]` or `[:^name:]` at the cursor: its ranges, whether it is
    /// negated, its length.
    fn posix(&self) -> Option<(Ranges, bool, usize)> {
        let rest = &self.chars[self.at + 2..];
        let close = rest.windows(2).position(|w| w == [':', ']'])?;
        let name: String = rest[..close].iter().collect();
        let (negated, name) = match name.strip_prefix('^') {
            Some(n) => (true, n),
            None => (false, name.as_str()),
        };
        let ranges = POSIX.iter().find(|(n, _)| *n == name)?.1;
        Some((ranges, negated, close + 4))
    }

    /// An ASCII class (Perl or POSIX) written out as ranges: with the other cases of its
    /// letters under `(?i)`, and — RE2 folds before it negates — complemented after that.
    /// Outside a class it is a class of its own.
    fn set(&mut self, ranges: &[(char, char)], negated: bool, in_class: bool) {
        let mut items: Vec<(u32, u32)> =
            ranges.iter().map(|&(a, b)| (a as u32, b as u32)).collect();
        if self.fold {
            for &(lo, hi) in ranges {
                casefold::outside_partners(lo, hi, |c| items.push((c as u32, c as u32)));
            }
        }
        if negated {
            items = complement(&items);
        }
        if !in_class {
            self.out.push('[');
        }
        for (lo, hi) in items {
            let (Some(lo), Some(hi)) = (char::from_u32(lo), char::from_u32(hi)) else {
                continue;
            };
            push_char(&mut self.out, lo);
            if hi != lo {
                self.out.push('-');
                push_char(&mut self.out, hi);
            }
        }
        if !in_class {
            self.out.push(']');
        }
    }

    /// A character or a range inside a class.
    fn class_item(&mut self) {
        let Some(lo) = self.class_char() else {
            return self.copy(2);
        };
        let hi = if self.peek(0) == Some('-') && self.peek(1).is_some_and(|c| c != ']') {
            self.at += 1;
            match self.class_char() {
                Some(hi) => Some(hi),
                None => {
                    // `[a-\d]`: not valid RE2; let the compile say so.
                    push_char(&mut self.out, lo);
                    self.out.push('-');
                    return self.copy(2);
                }
            }
        } else {
            None
        };
        let hi_or_lo = hi.unwrap_or(lo);
        push_char(&mut self.out, lo);
        if let Some(hi) = hi {
            self.out.push('-');
            push_char(&mut self.out, hi);
        }
        if self.fold && lo <= hi_or_lo {
            let out = &mut self.out;
            casefold::outside_partners(lo, hi_or_lo, |o| push_char(out, o));
        }
    }

    /// One character inside a class, consumed; `None` (nothing consumed) for an escape that is
    /// not a character.
    fn class_char(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        if c != '\\' {
            self.at += 1;
            return Some(c);
        }
        if let Some(c) = self.escaped_char() {
            return Some(c);
        }
        let c = match self.peek(1)? {
            'a' => '\x07',
            'f' => '\x0C',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'v' => '\x0B',
            _ => return None,
        };
        self.at += 2;
        Some(c)
    }
}

/// `c` as a literal the engine reads as `c`, in or out of a class: meta characters escaped,
/// whitespace and control characters as `\x{…}`.
fn push_char(out: &mut String, c: char) {
    use std::fmt::Write;
    if r"\.+*?()|[]{}^$#&-~".contains(c) {
        out.push('\\');
        out.push(c);
    } else if c.is_whitespace() || c.is_control() {
        let _ = write!(out, "\\x{{{:X}}}", c as u32);
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests;
