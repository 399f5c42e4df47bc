//! A small JSON reader and the typed decoding of the configuration from it.
//!
//! serde's derived deserializers for the routing configuration were ~45% of the routing module
//! (docs/benchmarks.md, "Filter size"): each type's visitor, field matcher and error paths,
//! twice for the tagged enums serde buffers. The filters decode their configuration here
//! instead: the document is read once into a [`Value`], and each configuration type implements
//! [`Decode`] by hand (`config/decode.rs`) with the same field names, defaults, tags and
//! unknown-field refusals as its serde attributes — `config`'s tests decode with both and compare.
//! An error names the field path (`virtualHosts[0].routes[2].action.backends`) and says what is
//! wrong there.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Deepest nesting read (serde_json's limit): a hostile document cannot exhaust the stack.
const MAX_DEPTH: usize = 128;

/// A JSON value, borrowing from the document: numbers keep their text (each field reads it as
/// its own type), strings and names are copied only where they have escapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'t> {
    Null,
    Bool(bool),
    Number(&'t str),
    String(Cow<'t, str>),
    Array(Vec<Value<'t>>),
    /// Members in document order.
    Object(Vec<(Cow<'t, str>, Value<'t>)>),
}

impl Value<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }
}

/// One step of an error's path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// What is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Innermost step first (steps are added as the error travels out).
    steps: Vec<Step>,
    message: String,
}

impl Error {
    /// An error at the value being decoded.
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            steps: Vec::new(),
            message: message.into(),
        }
    }

    /// `v` is not of the `expected` kind.
    pub fn invalid_type(v: &Value, expected: &str) -> Error {
        Error::new(format!("invalid type: {}, expected {expected}", v.kind()))
    }

    /// The error, one object member further in.
    pub fn in_field(mut self, key: &str) -> Error {
        self.steps.push(Step::Key(key.to_owned()));
        self
    }

    fn in_element(mut self, index: usize) -> Error {
        self.steps.push(Step::Index(index));
        self
    }

    /// The path from the document (`.` for the document itself).
    pub fn path(&self) -> String {
        let mut path = String::new();
        for step in self.steps.iter().rev() {
            match step {
                Step::Key(k) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                }
                Step::Index(i) => {
                    let _ = write!(path, "[{i}]");
                }
            }
        }
        if path.is_empty() {
            path.push('.');
        }
        path
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Reads `bytes` as one JSON document.
///
/// # Errors
/// Not UTF-8, not JSON (with the line and column), nested deeper than 128, or text after it.
pub fn parse(bytes: &[u8]) -> Result<Value<'_>, Error> {
    let src = std::str::from_utf8(bytes)
        .map_err(|e| Error::new(format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    let mut p = Parser {
        src,
        text: bytes,
        at: 0,
        depth: 0,
    };
    let v = p.value().map_err(|m| p.error(m))?;
    p.space();
    if p.at < p.text.len() {
        return Err(p.error("trailing characters"));
    }
    Ok(v)
}

/// Reads `bytes` and decodes it as `T`.
///
/// # Errors
/// [`parse`]'s, or `T`'s [`Decode`] error.
pub fn from_slice<T: Decode>(bytes: &[u8]) -> Result<T, Error> {
    T::decode(&parse(bytes)?)
}

struct Parser<'t> {
    src: &'t str,
    text: &'t [u8],
    at: usize,
    depth: usize,
}

impl<'t> Parser<'t> {
    fn error(&self, message: &str) -> Error {
        let before = &self.text[..self.at.min(self.text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.len()
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
        Error::new(format!("{message} at line {line} column {column}"))
    }

    fn space(&mut self) {
        while self
            .text
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        {
            self.at += 1;
        }
    }

    fn eat(&mut self, word: &[u8]) -> bool {
        let ok = self.text[self.at..].starts_with(word);
        if ok {
            self.at += word.len();
        }
        ok
    }

    fn value(&mut self) -> Result<Value<'t>, &'static str> {
        self.space();
        let Some(&b) = self.text.get(self.at) else {
            return Err("EOF while parsing a value");
        };
        match b {
            b'{' | b'[' => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err("recursion limit exceeded");
                }
                self.at += 1;
                let v = if b == b'{' {
                    self.object()
                } else {
                    self.array()
                };
                self.depth -= 1;
                v
            }
            b'"' => self.string().map(Value::String),
            b'n' if self.eat(b"null") => Ok(Value::Null),
            b't' if self.eat(b"true") => Ok(Value::Bool(true)),
            b'f' if self.eat(b"false") => Ok(Value::Bool(false)),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err("expected value"),
        }
    }

    fn object(&mut self) -> Result<Value<'t>, &'static str> {
        let mut members = Vec::new();
        self.space();
        if self.eat(b"}") {
            return Ok(Value::Object(members));
        }
        loop {
            self.space();
            if self.text.get(self.at) != Some(&b'"') {
                return Err("key must be a string");
            }
            let key = self.string()?;
            self.space();
            if !self.eat(b":") {
                return Err("expected `:`");
            }
            let v = self.value()?;
            members.push((key, v));
            self.space();
            if self.eat(b",") {
                continue;
            }
            if self.eat(b"}") {
                return Ok(Value::Object(members));
            }
            return Err("expected `,` or `}`");
        }
    }

    fn array(&mut self) -> Result<Value<'t>, &'static str> {
        let mut items = Vec::new();
        self.space();
        if self.eat(b"]") {
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.space();
            if self.eat(b",") {
                continue;
            }
            if self.eat(b"]") {
                return Ok(Value::Array(items));
            }
            return Err("expected `,` or `]`");
        }
    }

    fn number(&mut self) -> Result<Value<'t>, &'static str> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let from = p.at;
            while p.text.get(p.at).is_some_and(u8::is_ascii_digit) {
                p.at += 1;
            }
            p.at > from
        };
        self.eat(b"-");
        if self.eat(b"0") {
            if self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
                return Err("invalid number");
            }
        } else if !digits(self) {
            return Err("invalid number");
        }
        if self.eat(b".") && !digits(self) {
            return Err("invalid number");
        }
        if self.eat(b"e") || self.eat(b"E") {
            let _ = self.eat(b"+") || self.eat(b"-");
            if !digits(self) {
                return Err("invalid number");
            }
        }
        // ASCII by construction: character boundaries.
        Ok(Value::Number(&self.src[start..self.at]))
    }

    fn string(&mut self) -> Result<Cow<'t, str>, &'static str> {
        // At the opening quote.
        self.at += 1;
        let mut out: Option<String> = None;
        loop {
            let start = self.at;
            while self
                .text
                .get(self.at)
                .is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20)
            {
                self.at += 1;
            }
            // Character boundaries: the text is UTF-8 and the stops are ASCII.
            let run = &self.src[start..self.at];
            match self.text.get(self.at) {
                None => return Err("EOF while parsing a string"),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(match out {
                        None => Cow::Borrowed(run),
                        Some(mut s) => {
                            s.push_str(run);
                            Cow::Owned(s)
                        }
                    });
                }
                Some(b'\\') => {
                    let out = out.get_or_insert_with(String::new);
                    out.push_str(run);
                    self.at += 1;
                    let e = *self.text.get(self.at).ok_or("EOF while parsing a string")?;
                    self.at += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\x08'),
                        b'f' => out.push('\x0C'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi) {
                                if !self.eat(b"\\u") {
                                    return Err("lone leading surrogate in hex escape");
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err("invalid surrogate pair in hex escape");
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            out.push(char::from_u32(c).ok_or("invalid unicode code point")?);
                        }
                        _ => return Err("invalid escape"),
                    }
                }
                Some(_) => return Err("control character in a string"),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, &'static str> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .ok_or("EOF while parsing a string")?;
        let text = std::str::from_utf8(digits).map_err(|_| "invalid escape")?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("invalid escape");
        }
        self.at += 4;
        u32::from_str_radix(text, 16).map_err(|_| "invalid escape")
    }
}

/// A type read from a [`Value`].
pub trait Decode: Sized {
    /// # Errors
    /// What is wrong with `v`, with its path inside `v`.
    fn decode(v: &Value<'_>) -> Result<Self, Error>;
}

impl Decode for String {
    fn decode(v: &Value) -> Result<Self, Error> {
        match v {
            Value::String(s) => Ok(s.clone().into_owned()),
            _ => Err(Error::invalid_type(v, "a string")),
        }
    }
}

impl Decode for bool {
    fn decode(v: &Value) -> Result<Self, Error> {
        match v {
            Value::Bool(b) => Ok(*b),
            _ => Err(Error::invalid_type(v, "a boolean")),
        }
    }
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl Decode for $t {
            fn decode(v: &Value) -> Result<Self, Error> {
                let Value::Number(n) = v else {
                    return Err(Error::invalid_type(v, stringify!($t)));
                };
                n.parse().map_err(|_| Error::new(format!("invalid value: {n}, expected {}", stringify!($t))))
            }
        }
    )*};
}
integers!(u16, u32, u64, i64, usize);

impl Decode for f64 {
    fn decode(v: &Value) -> Result<Self, Error> {
        let Value::Number(n) = v else {
            return Err(Error::invalid_type(v, "f64"));
        };
        n.parse()
            .map_err(|_| Error::new(format!("invalid value: {n}, expected f64")))
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode(v: &Value) -> Result<Self, Error> {
        match v {
            Value::Null => Ok(None),
            v => T::decode(v).map(Some),
        }
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(v: &Value) -> Result<Self, Error> {
        let Value::Array(items) = v else {
            return Err(Error::invalid_type(v, "a sequence"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| T::decode(item).map_err(|e| e.in_element(i)))
            .collect()
    }
}

impl<T: Decode> Decode for BTreeMap<String, T> {
    fn decode(v: &Value) -> Result<Self, Error> {
        let Value::Object(members) = v else {
            return Err(Error::invalid_type(v, "a map"));
        };
        // Inserted one by one (a later duplicate replaces an earlier one, as in serde_json):
        // collecting would sort, and each sort is kilobytes of code in the module.
        let mut map = BTreeMap::new();
        for (k, v) in members {
            map.insert(k.to_string(), T::decode(v).map_err(|e| e.in_field(k))?);
        }
        Ok(map)
    }
}

impl<A: Decode, B: Decode> Decode for (A, B) {
    fn decode(v: &Value) -> Result<Self, Error> {
        match v {
            Value::Array(items) if items.len() == 2 => Ok((
                A::decode(&items[0]).map_err(|e| e.in_element(0))?,
                B::decode(&items[1]).map_err(|e| e.in_element(1))?,
            )),
            Value::Array(items) => Err(Error::new(format!(
                "invalid length {}, expected a tuple of size 2",
                items.len()
            ))),
            _ => Err(Error::invalid_type(v, "a tuple of size 2")),
        }
    }
}

/// The members of an object being decoded as a struct.
#[derive(Debug)]
pub struct Fields<'v> {
    members: &'v [(Cow<'v, str>, Value<'v>)],
}

/// `v` as an object whose member names are all in `known` (`None`: any name), each once.
///
/// # Errors
/// Not an object, an unknown member (`unknown field`), a repeated one (`duplicate field`).
pub fn fields<'v>(v: &'v Value<'v>, known: Option<&[&str]>) -> Result<Fields<'v>, Error> {
    let Value::Object(members) = v else {
        return Err(Error::invalid_type(v, "an object"));
    };
    for (i, (k, _)) in members.iter().enumerate() {
        if let Some(known) = known {
            if !known.contains(&k.as_ref()) {
                return Err(
                    Error::new(format!("unknown field `{k}`, expected {}", one_of(known)))
                        .in_field(k),
                );
            }
        }
        if members[..i].iter().any(|(other, _)| other == k) {
            return Err(Error::new(format!("duplicate field `{k}`")).in_field(k));
        }
    }
    Ok(Fields { members })
}

/// `` `a`, `b` or `c` `` for an error message.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => "no fields".to_owned(),
        [one] => format!("`{one}`"),
        _ => {
            let mut out = String::from("one of ");
            for (i, n) in names.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "`{n}`");
            }
            out
        }
    }
}

impl<'v> Fields<'v> {
    /// The member `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'v Value<'v>> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The member `key`, which must be present (an `Option` may be absent: `None`).
    ///
    /// # Errors
    /// Missing, or its decoding error under `key`.
    pub fn req<T: Decode>(&self, key: &str) -> Result<T, Error> {
        match self.get(key) {
            Some(v) => T::decode(v).map_err(|e| e.in_field(key)),
            // serde's rule: a missing `Option` is `None`, anything else is an error.
            None => {
                T::decode(&Value::Null).map_err(|_| Error::new(format!("missing field `{key}`")))
            }
        }
    }

    /// The member `key`, or `T::default()` when absent.
    ///
    /// # Errors
    /// Its decoding error under `key`.
    pub fn def<T: Decode + Default>(&self, key: &str) -> Result<T, Error> {
        self.or(key, T::default)
    }

    /// The member `key`, or `default()` when absent.
    ///
    /// # Errors
    /// Its decoding error under `key`.
    pub fn or<T: Decode>(&self, key: &str, default: impl FnOnce() -> T) -> Result<T, Error> {
        match self.get(key) {
            Some(v) => T::decode(v).map_err(|e| e.in_field(key)),
            None => Ok(default()),
        }
    }
}

/// A unit variant named by a string.
///
/// # Errors
/// Not a string, or not one of `variants`' names.
pub fn unit<T: Copy>(v: &Value, variants: &[(&str, T)]) -> Result<T, Error> {
    let Value::String(s) = v else {
        return Err(Error::invalid_type(v, "a variant name"));
    };
    variants
        .iter()
        .find(|(name, _)| *name == s.as_ref())
        .map(|(_, t)| *t)
        .ok_or_else(|| unknown_variant(s, variants.iter().map(|(n, _)| *n)))
}

/// The error for a variant name that is not one of `names`.
pub fn unknown_variant<'n>(name: &str, names: impl Iterator<Item = &'n str>) -> Error {
    let names: Vec<&str> = names.collect();
    Error::new(format!(
        "unknown variant `{name}`, expected {}",
        one_of(&names)
    ))
}

/// An externally tagged variant (`"name"` or `{"name": content}`): its name and content (`None`
/// for the bare name).
///
/// # Errors
/// Neither a string nor an object of one member.
pub fn external<'v>(v: &'v Value<'v>) -> Result<(&'v str, Option<&'v Value<'v>>), Error> {
    match v {
        Value::String(s) => Ok((s, None)),
        Value::Object(members) if members.len() == 1 => Ok((&members[0].0, Some(&members[0].1))),
        _ => Err(Error::invalid_type(
            v,
            "an enum: a name or an object of one member",
        )),
    }
}

#[cfg(test)]
mod tests;
