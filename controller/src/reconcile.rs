//! The reconciler: one sync reads a [`Source`], translates, renders and writes to a [`Sink`],
//! keeping the last good version of every object and file that turns bad. Translation and
//! rendering do not know where objects come from or where files go: a Kubernetes source is one
//! more [`Source`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::envoy::{render, RenderOptions};
use crate::model::{Object, ObjectRef};
use crate::sink::{FileSink, Sink};
use crate::source::{DirSource, LoadError, Manifest, Source};
use crate::translate::{translate, Options, Severity, Snapshot, TranslateError};

/// What one sync found and did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// Files and documents that did not parse (their last good objects were used).
    pub load_errors: Vec<LoadError>,
    /// Objects translate could not use, with the file each came from.
    pub translate_errors: Vec<(Option<PathBuf>, TranslateError)>,
    /// Objects served from their last good version because the current one is bad.
    pub kept_last_good: Vec<ObjectRef>,
    /// The snapshot now in force.
    pub snapshot: Option<Snapshot>,
    /// The status of the Gateway API objects as read (not their last good versions), computed
    /// after the write when the reconciler reports it ([`Reconciler::reporting_gateway_status`]).
    pub gateway_status: crate::translate::gateway_api::status::GatewayApiStatus,
    /// Files rewritten by this sync (empty: nothing changed).
    pub written: Vec<String>,
    /// The directory changed since the last read; the change applies once the next read agrees.
    pub waiting: bool,
    /// The source holds what the last sync applied, and it could tell without reading it
    /// ([`Source::unchanged`]): nothing was read, translated or written, and the report holds
    /// nothing else.
    pub unchanged: bool,
    /// Where this sync's time went (zero for a sync that read nothing).
    pub timings: SyncTimings,
}

/// How long each step of a sync took: the figures behind the push latency (`run --kube` logs
/// them with each push; `bench-kube` reports them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncTimings {
    /// Reading the source: the objects held, parsed into Portico's model.
    pub read: std::time::Duration,
    /// `translate` (twice when a last good object stood in for a bad one) and the last-good
    /// bookkeeping around it.
    pub translate: std::time::Duration,
    /// Rendering the snapshot into Envoy's files.
    pub render: std::time::Duration,
    /// Comparing, writing (with `fsync`) and renaming the changed files.
    pub write: std::time::Duration,
}

impl SyncReport {
    /// Every problem of this sync as one line each, with its severity: load errors and objects
    /// left out are errors, kept objects with a problem are warnings, objects served from their
    /// last good version are notes (warnings). Lines name the file when known.
    pub fn messages(&self) -> Vec<(Severity, String)> {
        let mut out: Vec<(Severity, String)> = self
            .load_errors
            .iter()
            .map(|e| (Severity::Error, e.to_string()))
            .collect();
        for (file, e) in &self.translate_errors {
            let line = match file {
                Some(f) => format!("{}: {e}", f.display()),
                None => e.to_string(),
            };
            out.push((e.severity(), line));
        }
        for o in &self.kept_last_good {
            out.push((
                Severity::Warning,
                format!("{o}: serving its last good version"),
            ));
        }
        out
    }
}

/// What a long-running sync loop tells its user: each change of the problems once, and when a
/// bad edit is fixed. One instance per loop; every CLI that follows a source uses it.
#[derive(Debug, Clone, Default)]
pub struct Reporter {
    last: Vec<(Severity, String)>,
    was_bad: bool,
}

impl Reporter {
    /// The lines to print after `report`: its problems (`(Some(severity), line)`) when they
    /// differ from the last ones printed, then `(None, "recovered: …")` when no object is left
    /// out or held at its last good version any more. A sync still settling says nothing.
    pub fn lines(&mut self, report: &SyncReport) -> Vec<(Option<Severity>, String)> {
        if report.waiting || report.unchanged {
            return Vec::new();
        }
        let messages = report.messages();
        let bad = !report.kept_last_good.is_empty()
            || messages.iter().any(|(s, _)| *s == Severity::Error);
        let mut out = Vec::new();
        if messages != self.last {
            out.extend(messages.iter().map(|(s, l)| (Some(*s), l.clone())));
            self.last = messages;
        }
        if self.was_bad && !bad {
            out.push((
                None,
                "recovered: no object is left out or held at its last good version".to_owned(),
            ));
        }
        self.was_bad = bad;
        out
    }

    /// [`Reporter::lines`], printed: problems to stderr as `error:` / `warning:`, the rest to
    /// stdout.
    pub fn print(&mut self, report: &SyncReport) {
        for (severity, line) in self.lines(report) {
            match severity {
                Some(s) => eprintln!("{s}: {line}"),
                None => println!("{line}"),
            }
        }
    }
}

/// Syncs a [`Source`] into a [`Sink`]: reads, translates, renders, writes what changed.
///
/// # Guarantees
/// A file that stops parsing keeps contributing the objects it last parsed to; an object that
/// stops parsing or translating keeps its last good version. A bad edit is reported and the last
/// good configuration keeps serving.
#[derive(Debug)]
pub struct Reconciler<S, K> {
    source: S,
    sink: K,
    options: Options,
    render: RenderOptions,
    last_good_files: HashMap<PathBuf, Vec<Manifest>>,
    last_good_objects: HashMap<ObjectRef, Object>,
    /// Apply a change only once two reads in a row agree (see [`Reconciler::settling`]).
    settle: bool,
    /// Compute the Gateway API status of each sync (see [`Reconciler::reporting_gateway_status`]).
    gateway_status: bool,
    /// The fingerprint of the last read, of the last applied read, and of the last sync that
    /// wrote its result.
    seen: Option<u64>,
    applied: Option<u64>,
    synced: Option<u64>,
}

impl<S: Source, K: Sink> Reconciler<S, K> {
    /// A reconciler reading `source` and writing to `sink`.
    pub fn with(source: S, sink: K, options: Options, render: RenderOptions) -> Self {
        Reconciler {
            source,
            sink,
            options,
            render,
            last_good_files: HashMap::new(),
            last_good_objects: HashMap::new(),
            settle: false,
            gateway_status: false,
            seen: None,
            applied: None,
            synced: None,
        }
    }

    /// Applies a change only when two consecutive syncs read the same directory contents. An
    /// editor that truncates a file and then writes it can be read in between; without this, the
    /// empty file would briefly remove its objects. Costs one sync interval of latency; the first
    /// sync always applies.
    pub fn settling(mut self) -> Self {
        self.settle = true;
        self
    }

    /// Also reports the Gateway API status in each [`SyncReport`] (what a Kubernetes leader
    /// writes back), computed once the configuration is written, so it never delays a push.
    pub fn reporting_gateway_status(mut self) -> Self {
        self.gateway_status = true;
        self
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The last good version of an object, served while its current version is bad.
    pub fn last_good(&self, object: &ObjectRef) -> Option<&Object> {
        self.last_good_objects.get(object)
    }

    /// Reads the source, translates, and writes whatever changed.
    ///
    /// # Errors
    /// I/O errors reading the source (as a whole) or writing to the sink.
    pub fn sync(&mut self) -> std::io::Result<SyncReport> {
        // Nothing to do when the source still holds what the last successful sync wrote (a
        // directory polled every second is not parsed and translated every second).
        if let Some(fingerprint) = self.source.unchanged()? {
            if self.synced == Some(fingerprint) {
                return Ok(SyncReport {
                    unchanged: true,
                    ..SyncReport::default()
                });
            }
        }
        let started = std::time::Instant::now();
        let mut loaded = self.source.read()?;
        let mut report = SyncReport::default();
        report.timings.read = started.elapsed();
        let fingerprint = loaded.fingerprint;
        let seen = self.seen.replace(fingerprint);
        if self.settle
            && self.applied.is_some()
            && self.applied != Some(fingerprint)
            && seen != Some(fingerprint)
        {
            // Seen once: it may be a file caught mid-write. The next sync applies it if it holds.
            report.waiting = true;
            return Ok(report);
        }
        self.applied = Some(fingerprint);
        // A file that no longer parses contributes what it last parsed to.
        for err in &loaded.errors {
            if err.object.is_none() {
                if let Some(old) = self.last_good_files.get(&err.file) {
                    loaded.manifests.extend(old.iter().cloned());
                }
            }
        }
        let bad_files: Vec<&PathBuf> = loaded
            .errors
            .iter()
            .filter(|e| e.object.is_none())
            .map(|e| &e.file)
            .collect();
        let mut by_file: HashMap<PathBuf, Vec<Manifest>> = HashMap::new();
        for m in &loaded.manifests {
            if !bad_files.contains(&&m.file) {
                by_file.entry(m.file.clone()).or_default().push(m.clone());
            }
        }
        for (file, ms) in by_file {
            self.last_good_files.insert(file, ms);
        }

        let mut objects: Vec<Object> = loaded.manifests.iter().map(|m| m.object.clone()).collect();
        let translating = std::time::Instant::now();
        let mut translation = translate(&objects, &self.options);
        // Objects translate dropped: serve their last good version if they had one.
        let dropped: Vec<ObjectRef> = translation
            .errors
            .iter()
            .filter(|e| e.object_dropped())
            .map(|e| e.object.clone())
            .collect();
        // The objects as read, kept for the status when a last good version replaces one.
        let mut as_read: Option<Vec<Object>> = None;
        for r in &dropped {
            if let Some(good) = self.last_good_objects.get(r) {
                if let Some(i) = objects.iter().position(|o| &o.object_ref() == r) {
                    if self.gateway_status && as_read.is_none() {
                        as_read = Some(objects.clone());
                    }
                    objects[i] = good.clone();
                    report.kept_last_good.push(r.clone());
                }
            }
        }
        if !report.kept_last_good.is_empty() {
            // The errors describe the objects as they are now.
            let errors = std::mem::take(&mut translation.errors);
            translation = translate(&objects, &self.options);
            translation.errors = errors;
        }
        for o in &objects {
            let r = o.object_ref();
            if !dropped.contains(&r) {
                self.last_good_objects.insert(r, o.clone());
            }
        }
        let file_of = |r: &ObjectRef| {
            loaded
                .manifests
                .iter()
                .find(|m| &m.object.object_ref() == r)
                .map(|m| m.file.clone())
        };
        report.translate_errors = translation
            .errors
            .into_iter()
            .map(|e| (file_of(&e.object), e))
            .collect();
        report.load_errors = loaded.errors;
        report.timings.translate = translating.elapsed();
        let rendering = std::time::Instant::now();
        let rendered = render(&translation.snapshot, &self.render);
        report.timings.render = rendering.elapsed();
        let writing = std::time::Instant::now();
        report.written = self.sink.write(&rendered)?;
        report.timings.write = writing.elapsed();
        self.synced = Some(fingerprint);
        report.snapshot = Some(translation.snapshot);
        if self.gateway_status {
            report.gateway_status = crate::translate::gateway_api::status::status(
                as_read.as_deref().unwrap_or(&objects),
                report.translate_errors.iter().map(|(_, e)| e),
                self.options.mesh,
            );
        }
        Ok(report)
    }
}

/// Syncs a manifest directory into an xDS directory.
pub type DirController = Reconciler<DirSource, FileSink>;

impl Reconciler<DirSource, FileSink> {
    /// A controller over the manifest directory `manifests`, writing to `render.xds_dir`.
    pub fn new(manifests: PathBuf, options: Options, render: RenderOptions) -> Self {
        let sink = FileSink::new(render.xds_dir.clone());
        Reconciler::with(DirSource::new(manifests), sink, options, render)
    }

    /// The manifests directory.
    pub fn manifests(&self) -> &Path {
        self.source.dir()
    }
}
