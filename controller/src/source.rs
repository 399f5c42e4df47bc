//! The directory source: every `*.yaml`, `*.yml` and `*.json` file under a directory, each a
//! stream of documents (`---`), a document being an object or a `kind: List`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::model::{describe_value, ref_of_value, Object, ObjectError, ObjectRef, ParseMode};

/// One object and where it came from.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// File it was read from.
    pub file: PathBuf,
    /// The object.
    pub object: Object,
}

/// A document that is not a usable object, or a file that is not YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// `kind namespace/name` when the document got that far.
    pub object: Option<String>,
    /// The object (with its API group) when the document names it.
    pub object_ref: Option<ObjectRef>,
    /// Why the document is not a usable object (`None` for a file that could not be read).
    pub error: Option<ObjectError>,
    /// What is wrong.
    pub message: String,
    /// The kind is one Portico does not read (yet).
    pub unsupported_kind: bool,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(o) = &self.object {
            write!(f, ": {o}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for LoadError {}

/// Everything read from a directory.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Objects that parsed.
    pub manifests: Vec<Manifest>,
    /// Documents or files that did not. A file-level error (`object: None`) means none of that
    /// file's documents were read.
    pub errors: Vec<LoadError>,
    /// A hash of every file's path and contents: equal fingerprints, equal directories.
    pub fingerprint: u64,
}

/// How deep a manifest may nest collections: the YAML parser's own recursion limit (128), which
/// it applies only after scanning the whole input in time quadratic in the depth (40 000 levels:
/// 9 s), so deeper input is refused before it is parsed. Kubernetes objects nest a few dozen
/// levels at most.
pub const MAX_NESTING: usize = 128;

/// The largest manifest or scenario file read: 64 MiB, checked before reading (a Kubernetes
/// object is at most 1.5 MiB in etcd; this leaves room for many in one file).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// The most documents one file may hold: 100 000.
pub const MAX_DOCUMENTS: usize = 100_000;

/// A manifest or scenario file's text, refused before it is read when it is larger than
/// [`MAX_FILE_BYTES`].
///
/// # Errors
/// The file cannot be read, is too large (`InvalidData`, naming the limit) or is not UTF-8.
pub fn read_text(file: &Path) -> std::io::Result<String> {
    let len = std::fs::metadata(file)?.len();
    if len > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{len} bytes, over the limit of {MAX_FILE_BYTES} bytes ({} MiB); the file is not read",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    std::fs::read_to_string(file)
}

/// Refuses YAML that nests collections deeper than [`MAX_NESTING`]: flow collections (`[`, `{`
/// outside quoted scalars) and block sequences opened on one line (`- - - x`). A linear scan.
///
/// # Errors
/// Where the limit was passed.
pub fn check_nesting(text: &str) -> Result<(), String> {
    let too_deep = |line: usize| {
        Err(format!(
            "line {line}: collections nest deeper than {MAX_NESTING} levels; the file is not parsed"
        ))
    };
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (n, line) in text.lines().enumerate() {
        let mut chars = line.chars().peekable();
        if quote.is_none() && depth == 0 {
            // Block sequence entries opened on the same line: `- - - x`.
            let dashes = line
                .trim_start()
                .split_inclusive(' ')
                .take_while(|t| t.trim_end() == "-")
                .count();
            if dashes > MAX_NESTING {
                return too_deep(n + 1);
            }
        }
        while let Some(c) = chars.next() {
            match (quote, c) {
                (Some('"'), '\\') => {
                    chars.next();
                }
                (Some(q), c) if c == q => {
                    // `''` inside a single-quoted scalar is a quote, not its end.
                    if q == '\'' && chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        quote = None;
                    }
                }
                (Some(_), _) => {}
                (None, '#') => break,
                (None, '"' | '\'') => quote = Some(c),
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return too_deep(n + 1);
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Splits a YAML stream into documents, flattening `kind: List`; nulls (empty documents) dropped.
///
/// # Errors
/// The YAML parser's message (with line and column) for the first bad document, or
/// [`check_nesting`]'s, or more than [`MAX_DOCUMENTS`] documents.
pub fn documents(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    check_nesting(text)?;
    let mut out = Vec::new();
    for (n, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        if n == MAX_DOCUMENTS {
            return Err(format!(
                "more than {MAX_DOCUMENTS} documents; the file is not parsed"
            ));
        }
        let value = Value::deserialize(doc).map_err(|e| e.to_string())?;
        match value {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                if let Some(Value::Array(items)) = map.get("items") {
                    out.extend(items.iter().cloned());
                }
            }
            v => out.push(v),
        }
    }
    Ok(out)
}

/// Parses documents into objects, strictly (they are manifests a user wrote: an unknown field in
/// a routing spec is an error naming it); the errors name each bad document.
pub fn parse_values(file: &Path, values: Vec<Value>, loaded: &mut Loaded) {
    for value in values {
        let label = describe_value(&value);
        let object_ref = ref_of_value(&value);
        match Object::parse(value, ParseMode::Strict) {
            Ok(object) => loaded.manifests.push(Manifest {
                file: file.to_owned(),
                object,
            }),
            Err(e) => loaded.errors.push(LoadError {
                file: file.to_owned(),
                object: Some(label),
                object_ref,
                unsupported_kind: matches!(e, ObjectError::UnsupportedKind { .. }),
                message: e.to_string(),
                error: Some(e),
            }),
        }
    }
}

/// Where a reconciler reads objects from.
pub trait Source {
    /// Everything the source holds now. An object or a document that cannot be read is one of
    /// [`Loaded::errors`]; each [`Manifest::file`] says where an object came from.
    ///
    /// # Errors
    /// Only when the source as a whole cannot be read.
    fn read(&mut self) -> std::io::Result<Loaded>;

    /// The [`Loaded::fingerprint`] [`Source::read`] would return, when the source can tell
    /// without reading anything (nothing changed since the last read); `None` otherwise.
    ///
    /// # Errors
    /// Only when the source as a whole cannot be looked at.
    fn unchanged(&mut self) -> std::io::Result<Option<u64>> {
        Ok(None)
    }
}

/// A directory of manifests a user wrote, read strictly. A file is parsed again only when its
/// contents changed: an unchanged size and modification time reuse what it parsed to without
/// reading it, and changed metadata with the same contents (a `touch`) reuse it after reading.
#[derive(Debug, Clone)]
pub struct DirSource {
    dir: PathBuf,
    files: HashMap<PathBuf, ParsedFile>,
}

/// What one file parsed to, and how it looked then.
#[derive(Debug, Clone)]
struct ParsedFile {
    stamp: Stamp,
    /// Hash of the path and the contents.
    hash: u64,
    /// Its objects and errors (no fingerprint).
    parsed: Loaded,
}

/// Size and modification time.
type Stamp = (u64, Option<std::time::SystemTime>);

/// The stamp of a file that must be read again (it matches no file's).
const UNTRUSTED: Stamp = (u64::MAX, None);

/// How coarse a modification time may be: a write that lands in the same tick as an earlier one
/// keeps the earlier time (Linux takes it from a coarse clock; some file systems keep seconds).
/// A stamp is only trusted for a file last modified at least this long before it was read, so
/// any later write moves its time (as git's "racily clean" rule).
const TIMESTAMP_GRANULARITY: std::time::Duration = std::time::Duration::from_secs(1);

fn stamp(file: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(file)?;
    Ok((meta.len(), meta.modified().ok()))
}

fn chain(fingerprint: u64, file_hash: u64) -> u64 {
    portico_core::lb::hash(&[&fingerprint.to_le_bytes(), &file_hash.to_le_bytes()])
}

impl DirSource {
    /// The manifests under `dir`.
    pub fn new(dir: PathBuf) -> Self {
        DirSource {
            dir,
            files: HashMap::new(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn files(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        collect(&self.dir, &mut files)?;
        files.sort();
        Ok(files)
    }
}

impl Source for DirSource {
    fn read(&mut self) -> std::io::Result<Loaded> {
        let started = std::time::SystemTime::now();
        let files = self.files()?;
        let present: std::collections::HashSet<&PathBuf> = files.iter().collect();
        self.files.retain(|f, _| present.contains(f));
        let mut loaded = Loaded::default();
        for file in files {
            let cached = self.files.get(&file);
            let stamp = stamp(&file).ok();
            let entry = match cached {
                Some(c) if stamp == Some(c.stamp) => c.clone(),
                _ => {
                    let text = match read_text(&file) {
                        Ok(t) => t,
                        Err(e) => {
                            self.files.remove(&file);
                            loaded.errors.push(LoadError {
                                file,
                                object: None,
                                object_ref: None,
                                error: None,
                                message: e.to_string(),
                                unsupported_kind: false,
                            });
                            continue;
                        }
                    };
                    let hash = portico_core::lb::hash(&[
                        file.as_os_str().as_encoded_bytes(),
                        text.as_bytes(),
                    ]);
                    let parsed = match cached {
                        Some(c) if c.hash == hash => c.parsed.clone(),
                        _ => parse_file(&file, &text),
                    };
                    let trusted = stamp.filter(|(_, modified)| {
                        modified.is_some_and(|m| m + TIMESTAMP_GRANULARITY < started)
                    });
                    let entry = ParsedFile {
                        // Read again next time: a recent file (its next write may keep this
                        // time) or one whose metadata cannot be read.
                        stamp: trusted.unwrap_or(UNTRUSTED),
                        hash,
                        parsed,
                    };
                    self.files.insert(file, entry.clone());
                    entry
                }
            };
            loaded.fingerprint = chain(loaded.fingerprint, entry.hash);
            loaded.manifests.extend(entry.parsed.manifests);
            loaded.errors.extend(entry.parsed.errors);
        }
        drop_duplicates(&mut loaded);
        Ok(loaded)
    }

    fn unchanged(&mut self) -> std::io::Result<Option<u64>> {
        let files = self.files()?;
        if files.len() != self.files.len() {
            return Ok(None);
        }
        let mut fingerprint = 0;
        for file in &files {
            match self.files.get(file) {
                Some(c) if stamp(file).ok() == Some(c.stamp) => {
                    fingerprint = chain(fingerprint, c.hash);
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(fingerprint))
    }
}

/// The objects and errors of one file's text.
fn parse_file(file: &Path, text: &str) -> Loaded {
    let mut loaded = Loaded::default();
    match documents(text) {
        Ok(values) => parse_values(file, values, &mut loaded),
        Err(message) => loaded.errors.push(LoadError {
            file: file.to_owned(),
            object: None,
            object_ref: None,
            error: None,
            message: format!("not valid YAML: {message}"),
            unsupported_kind: false,
        }),
    }
    loaded
}

/// Reads every manifest file under `dir` (recursively, sorted by path; dot-files skipped).
///
/// # Errors
/// Only when the directory itself cannot be read; bad files are [`Loaded::errors`].
pub fn load_dir(dir: &Path) -> std::io::Result<Loaded> {
    DirSource::new(dir.to_owned()).read()
}

/// Keeps one object per API group, kind, namespace and name — Kubernetes never holds two — and
/// reports every later copy (files in path order, documents in file order) as an error naming
/// where the kept one is.
fn drop_duplicates(loaded: &mut Loaded) {
    let mut first: HashMap<ObjectRef, PathBuf> = HashMap::new();
    let mut duplicates = Vec::new();
    loaded.manifests.retain(|m| {
        let r = m.object.object_ref();
        match first.get(&r) {
            None => {
                first.insert(r, m.file.clone());
                true
            }
            Some(kept) => {
                duplicates.push(LoadError {
                    file: m.file.clone(),
                    object: Some(r.to_string()),
                    message: format!(
                        "a second {r} (the one in {} is used: one object per name, as in Kubernetes)",
                        kept.display()
                    ),
                    object_ref: Some(r),
                    error: None,
                    unsupported_kind: false,
                });
                false
            }
        }
    });
    loaded.errors.extend(duplicates);
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            collect(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod nesting_tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_fast() {
        let deep = format!("x: {}{}\n", "[".repeat(40_000), "]".repeat(40_000));
        // Refused by the linear scan, before the parser's quadratic one (how fast is a matter for
        // benchmarks, not this test).
        let err = documents(&deep).unwrap_err();
        assert!(err.contains("deeper than 128"), "{err}");
        let dashes = format!("{}x\n", "- ".repeat(1000));
        assert!(documents(&dashes).unwrap_err().contains("line 1"));
    }

    #[test]
    fn too_many_documents_or_bytes_are_refused_naming_the_limit() {
        let many = "---\na: 1\n".repeat(MAX_DOCUMENTS + 1);
        let err = documents(&many).unwrap_err();
        assert!(err.contains("more than 100000 documents"), "{err}");
        assert_eq!(documents(&"---\na: 1\n".repeat(10)).unwrap().len(), 10);

        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yaml");
        // Sparse: the size is what is checked, nothing is read.
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_FILE_BYTES + 1)
            .unwrap();
        let err = read_text(&big).unwrap_err().to_string();
        assert!(
            err.contains("over the limit of 67108864 bytes (64 MiB)"),
            "{err}"
        );
        let loaded = load_dir(dir.path()).unwrap();
        assert!(loaded.errors[0]
            .to_string()
            .contains("the file is not read"));
    }

    #[test]
    fn brackets_in_scalars_and_comments_do_not_count() {
        let text = format!(
            "a: \"{}\"\nb: '{}'\n# {}\nc: [1, {{d: [2]}}]\n",
            "[".repeat(1000),
            "{".repeat(1000),
            "[".repeat(1000)
        );
        assert_eq!(documents(&text).unwrap().len(), 1);
        let ok = format!("x: {}1{}\n", "[".repeat(100), "]".repeat(100));
        assert!(documents(&ok).is_ok());
    }
}
