//! `package`: each filter module as an OCI image, in the two forms Istio's WasmPlugin
//! (`oci://…`) and Envoy Gateway's EnvoyExtensionPolicy (`code.type: Image`) fetch — both run
//! the same image fetcher (Istio `pkg/wasm/imagefetcher.go`, Envoy Gateway
//! `internal/wasm/imagefetcher.go`):
//!
//! - **compat** ([`Variant::Compat`]): an OCI image manifest whose last layer is
//!   `application/vnd.oci.image.layer.v1.tar+gzip`, a gzipped tar holding `plugin.wasm`
//!   (`extractOCIStandardImage`, `extractWasmPluginBinary`: the first entry whose base name is
//!   `plugin.wasm`). Docker-format tools (`crane`, `docker`) keep this one intact.
//! - **artifact** ([`Variant::Artifact`]): exactly two layers, the raw module as
//!   `application/vnd.module.wasm.content.layer.v1+wasm` and its runtime config as
//!   `application/vnd.module.wasm.config.v1+json` (`extractOCIArtifactImage`).
//!
//! Each is written as an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`; push it
//! with `crane push DIR REF`, `skopeo copy oci:DIR docker://REF` or `oras cp --from-oci-layout`)
//! and as a tarball of that layout (an `oci-archive`). The fetchers check a WasmPlugin's or
//! EnvoyExtensionPolicy's `sha256` against the **manifest** digest (the image digest a registry
//! reports), which [`Image::manifest_digest`] is. Everything is deterministic: the same module
//! gives the same digests (tar and gzip headers carry no time, owner or name).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The compat image's layer media type.
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The artifact image's module layer media type.
pub const WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// The artifact image's runtime config layer media type.
pub const WASM_CONFIG_LAYER: &str = "application/vnd.module.wasm.config.v1+json";
/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The file the compat layer holds.
pub const PLUGIN_FILE: &str = "plugin.wasm";

/// Which of the fetchers' image forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// One gzipped tar layer holding `plugin.wasm`.
    Compat,
    /// The raw module and its runtime config, two layers.
    Artifact,
}

/// One image written by [`write_image`].
#[derive(Debug, Clone)]
pub struct Image {
    /// The image name (`portico-routing`, `portico-routing-artifact`).
    pub name: String,
    /// Its form.
    pub variant: Variant,
    /// The OCI image layout directory.
    pub layout: PathBuf,
    /// The layout as a tarball (`NAME.tar`).
    pub tarball: PathBuf,
    /// sha256 (hex) of the manifest: the `sha256` a WasmPlugin or EnvoyExtensionPolicy pins.
    pub manifest_digest: String,
    /// sha256 (hex) of the module itself.
    pub wasm_digest: String,
}

/// The sha256 of `data`, lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A blob of the layout: its bytes and descriptor.
struct Blob {
    bytes: Vec<u8>,
    media_type: &'static str,
}

impl Blob {
    fn new(bytes: Vec<u8>, media_type: &'static str) -> Self {
        Blob { bytes, media_type }
    }

    fn digest(&self) -> String {
        sha256_hex(&self.bytes)
    }

    fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "digest": format!("sha256:{}", self.digest()),
            "size": self.bytes.len(),
        })
    }
}

/// A tar archive of `entries` (name, bytes) with fixed headers: mode 0644, owner 0, time 0.
fn tar(entries: &[(&str, &[u8])]) -> std::io::Result<Vec<u8>> {
    let mut builder = ::tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut header = ::tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(::tar::EntryType::Regular);
        builder.append_data(&mut header, name, *data)?;
    }
    builder.into_inner()
}

/// `data` gzipped, with no time or file name in the header.
fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}

/// Writes `wasm` as the image `name` (tag `tag`) in `variant`'s form: the layout `out/NAME/` and
/// the tarball `out/NAME.tar` (both replaced). `root_ids` go in the artifact's runtime config.
///
/// # Errors
/// Writing the files.
pub fn write_image(
    wasm: &[u8],
    name: &str,
    tag: &str,
    variant: Variant,
    root_ids: &[&str],
    out: &Path,
) -> std::io::Result<Image> {
    let (layers, diff_ids) = match variant {
        Variant::Compat => {
            let archive = tar(&[(PLUGIN_FILE, wasm)])?;
            let diff_id = sha256_hex(&archive);
            (
                vec![Blob::new(gzip(&archive)?, OCI_LAYER_TAR_GZIP)],
                vec![diff_id],
            )
        }
        Variant::Artifact => {
            let runtime = serde_json::to_vec(&json!({
                "type": "envoy_proxy",
                "abiVersions": ["v0-097b7f2e4cc1fb490cc1943d0d633655ac3c522f"],
                "config": {"rootIds": root_ids},
            }))?;
            let layers = vec![
                Blob::new(wasm.to_vec(), WASM_LAYER),
                Blob::new(runtime, WASM_CONFIG_LAYER),
            ];
            let diff_ids = layers.iter().map(Blob::digest).collect();
            (layers, diff_ids)
        }
    };
    let config = Blob::new(
        serde_json::to_vec(&json!({
            "architecture": "wasm",
            "os": "wasip1",
            "config": {},
            "rootfs": {
                "type": "layers",
                "diff_ids": diff_ids.iter().map(|d| format!("sha256:{d}")).collect::<Vec<_>>(),
            },
        }))?,
        OCI_CONFIG,
    );
    let mut annotations = json!({"org.opencontainers.image.title": name});
    if variant == Variant::Compat {
        annotations["module.wasm.image/variant"] = json!("compat");
    }
    let manifest = Blob::new(
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
            "annotations": annotations,
        }))?,
        OCI_MANIFEST,
    );
    let mut index_entry = manifest.descriptor();
    index_entry["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [index_entry],
    }))?;
    let oci_layout = br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec();

    let layout = out.join(name);
    if layout.exists() {
        std::fs::remove_dir_all(&layout)?;
    }
    std::fs::create_dir_all(layout.join("blobs/sha256"))?;
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("oci-layout".into(), oci_layout),
        ("index.json".into(), index),
    ];
    for blob in std::iter::once(&manifest)
        .chain(std::iter::once(&config))
        .chain(&layers)
    {
        files.push((
            format!("blobs/sha256/{}", blob.digest()),
            blob.bytes.clone(),
        ));
    }
    for (path, bytes) in &files {
        std::fs::write(layout.join(path), bytes)?;
    }
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    let tarball = out.join(format!("{name}.tar"));
    std::fs::write(&tarball, tar(&entries)?)?;
    Ok(Image {
        name: name.to_owned(),
        variant,
        layout,
        tarball,
        manifest_digest: manifest.digest(),
        wasm_digest: sha256_hex(wasm),
    })
}

/// The filter modules `just build` makes and their images: (file, image name, root ids).
pub const MODULES: [(&str, &str, &[&str]); 3] = [
    (
        "portico_filter_routing.wasm",
        "portico-routing",
        &["portico-routing"],
    ),
    ("portico_filter_tls.wasm", "portico-tls", &["portico-tls"]),
    (
        "portico_filter_egress.wasm",
        "portico-egress",
        &[
            "portico-egress-http",
            "portico-egress-tls",
            "portico-egress-tcp",
        ],
    ),
];

/// Writes both images of every module of [`MODULES`] found in `wasm_dir` into `out`.
///
/// # Errors
/// A module missing, or writing the files.
pub fn package_all(wasm_dir: &Path, tag: &str, out: &Path) -> std::io::Result<Vec<Image>> {
    let mut images = Vec::new();
    for (file, name, roots) in MODULES {
        let path = wasm_dir.join(file);
        let wasm = std::fs::read(&path).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("{}: {e} (run `just build`)", path.display()),
            )
        })?;
        images.push(write_image(&wasm, name, tag, Variant::Compat, roots, out)?);
        images.push(write_image(
            &wasm,
            &format!("{name}-artifact"),
            tag,
            Variant::Artifact,
            roots,
            out,
        )?);
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_deterministic_and_name_their_blobs_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = b"\0asm\x01\0\0\0 a module".to_vec();
        let a = write_image(&wasm, "m", "v1", Variant::Compat, &["r"], dir.path()).unwrap();
        let first = std::fs::read(&a.tarball).unwrap();
        let b = write_image(&wasm, "m", "v1", Variant::Compat, &["r"], dir.path()).unwrap();
        assert_eq!(a.manifest_digest, b.manifest_digest);
        assert_eq!(first, std::fs::read(&b.tarball).unwrap());
        let manifest =
            std::fs::read(a.layout.join(format!("blobs/sha256/{}", a.manifest_digest))).unwrap();
        assert_eq!(sha256_hex(&manifest), a.manifest_digest);
        let c = write_image(&wasm, "n", "v1", Variant::Artifact, &["r"], dir.path()).unwrap();
        assert_ne!(a.manifest_digest, c.manifest_digest);
        assert_eq!(a.wasm_digest, c.wasm_digest);
    }

    #[test]
    fn a_missing_module_is_named_and_nothing_is_half_written() {
        let wasm_dir = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let err = package_all(wasm_dir.path(), "v1", out.path()).unwrap_err();
        let message = err.to_string();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(message.contains(MODULES[0].0), "{message}");
        assert!(message.contains("run `just build`"), "{message}");
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    }
}
