//! The file-xDS sink: writes each rendered file only when its contents change, by writing a
//! temporary file and `rename()`-ing it over the old one. Envoy reloads a path config source only
//! on a rename into place (an in-place write is never noticed), and a rename is atomic, so Envoy
//! never reads a half-written file.

use std::io::Write;
use std::path::PathBuf;

use crate::envoy::Rendered;

/// Where a reconciler writes rendered files.
pub trait Sink {
    /// Writes every file whose contents changed and returns their names.
    ///
    /// # Errors
    /// Any I/O error.
    fn write(&mut self, rendered: &Rendered) -> std::io::Result<Vec<String>>;
}

impl Sink for FileSink {
    fn write(&mut self, rendered: &Rendered) -> std::io::Result<Vec<String>> {
        FileSink::write(self, rendered)
    }
}

/// Writes rendered files under one directory.
#[derive(Debug, Clone)]
pub struct FileSink {
    dir: PathBuf,
}

impl FileSink {
    /// A sink writing under `dir` (created as needed); temporary files go to `dir/.tmp`.
    pub fn new(dir: PathBuf) -> Self {
        FileSink { dir }
    }

    /// Writes every file whose contents differ from what is on disk, in the order given
    /// (bootstrap, clusters, listeners, filter configuration), and returns their names.
    ///
    /// # Errors
    /// Any I/O error; files already renamed stay in place.
    pub fn write(&self, rendered: &Rendered) -> std::io::Result<Vec<String>> {
        let tmp_dir = self.dir.join(".tmp");
        std::fs::create_dir_all(&tmp_dir)?;
        let mut written = Vec::new();
        for (name, contents) in &rendered.files {
            let target = self.dir.join(name);
            if std::fs::read(&target).is_ok_and(|old| &old == contents) {
                continue;
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let tmp = tmp_dir.join(name.replace('/', "_"));
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(contents)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &target)?;
            written.push(name.clone());
        }
        Ok(written)
    }
}
