//! The OCI images `portico-controller package` writes, pulled back the way Istio's WasmPlugin
//! image fetcher (`pkg/wasm/imagefetcher.go`) and Envoy Gateway's fork of it
//! (`internal/wasm/imagefetcher.go`) read an image — every blob checked against its descriptor's
//! digest and size (go-containerregistry), the variant picked by the manifest, `plugin.wasm`
//! taken from the compat layer or the raw module from the artifact's two layers, the wasm magic
//! checked, the pinned `sha256` compared with the manifest digest — and the modules so extracted
//! loaded into a real Envoy that serves scenarios through all three filters.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use portico_controller::package::{
    package_all, sha256_hex, Variant, OCI_LAYER_TAR_GZIP, OCI_MANIFEST, PLUGIN_FILE, WASM_LAYER,
};
use portico_e2e::proxy::{routing_wasm, workspace_root};
use serde_json::Value;

/// A blob of the layout, checked against its descriptor as go-containerregistry checks what it
/// downloads.
fn blob(layout: &Path, descriptor: &Value) -> Result<Vec<u8>, String> {
    let digest = descriptor["digest"]
        .as_str()
        .ok_or("descriptor without digest")?;
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("{digest}: not sha256"))?;
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).map_err(|e| e.to_string())?;
    if sha256_hex(&bytes) != hex {
        return Err(format!("blob {digest}: content has another digest"));
    }
    if descriptor["size"].as_u64() != Some(bytes.len() as u64) {
        return Err(format!("blob {digest}: size differs from its descriptor"));
    }
    Ok(bytes)
}

/// Pulls `tag` from an OCI layout as the fetchers do: the module and the manifest digest.
fn fetch(layout: &Path, tag: &str) -> Result<(Vec<u8>, String), String> {
    let index: Value = serde_json::from_slice(
        &std::fs::read(layout.join("index.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let descriptor = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .ok_or_else(|| format!("no manifest tagged {tag}"))?;
    let manifest_bytes = blob(layout, descriptor)?;
    let manifest: Value = serde_json::from_slice(&manifest_bytes).map_err(|e| e.to_string())?;
    // `PrepareFetch`: the image digest is the manifest's; the config must exist too.
    blob(layout, &manifest["config"])?;
    let digest = sha256_hex(&manifest_bytes);
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    if manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json" {
        return Err("a Docker manifest: not what package writes".into());
    }
    // extractOCIStandardImage: the last layer, tar+gzip, first entry named plugin.wasm.
    let compat = (|| {
        let last = layers.last().ok_or("no layers")?;
        if last["mediaType"] != OCI_LAYER_TAR_GZIP {
            return Err(format!(
                "invalid media type {} (expect {OCI_LAYER_TAR_GZIP})",
                last["mediaType"]
            ));
        }
        let gz = blob(layout, last)?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz.as_slice()));
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| format!("failed to parse layer as tar.gz: {e}"))?;
            let path = entry.path().map_err(|e| e.to_string())?.into_owned();
            if path.file_name().is_some_and(|n| n == PLUGIN_FILE) {
                let mut out = Vec::new();
                entry.read_to_end(&mut out).map_err(|e| e.to_string())?;
                return Ok(out);
            }
        }
        Err(format!("{PLUGIN_FILE} not found in the archive"))
    })();
    // extractOCIArtifactImage: exactly two layers, the raw module by its media type.
    let module = compat.or_else(|compat_error| {
        if layers.len() != 2 {
            return Err(format!(
                "not compat ({compat_error}), not an artifact: number of layers must be 2"
            ));
        }
        let wasm = layers
            .iter()
            .find(|l| l["mediaType"] == WASM_LAYER)
            .ok_or("no wasm layer")?;
        blob(layout, wasm)
    })?;
    if module.len() < 8 || module[..4] != *b"\0asm" {
        return Err("fetched binary is not a wasm module".into());
    }
    Ok((module, digest))
}

/// An OCI archive (the layout as a tarball) unpacked into `dir`.
fn unpack(tarball: &Path, dir: &Path) {
    tar::Archive::new(std::fs::File::open(tarball).unwrap())
        .unpack(dir)
        .unwrap();
}

/// `portico-e2e run` with the modules of `dir`; returns its output and whether it passed.
fn run_envoy(dir: &Path, scenarios: &[&str]) -> (String, bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_portico-e2e"))
        .current_dir(workspace_root())
        .env(
            "PORTICO_ROUTING_WASM",
            dir.join("portico_filter_routing.wasm"),
        )
        .arg("run")
        .args(scenarios)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (text, out.status.success())
}

#[test]
fn packaged_modules_pull_as_the_fetchers_pull_them_and_run_in_envoy() {
    let wasm_dir: PathBuf = routing_wasm().parent().unwrap().to_path_buf();
    let out = tempfile::tempdir().unwrap();
    let images = package_all(&wasm_dir, "test", out.path()).unwrap();
    assert_eq!(images.len(), 6);
    let compat_modules = tempfile::tempdir().unwrap();
    let artifact_modules = tempfile::tempdir().unwrap();
    for image in &images {
        let (file, _, _) = portico_controller::package::MODULES
            .iter()
            .find(|(_, name, _)| image.name.starts_with(name))
            .unwrap();
        let original = std::fs::read(wasm_dir.join(file)).unwrap();
        // From the layout, and from the archive unpacked elsewhere.
        let (from_layout, digest) = fetch(&image.layout, "test").unwrap();
        let unpacked = tempfile::tempdir().unwrap();
        unpack(&image.tarball, unpacked.path());
        let (from_archive, archive_digest) = fetch(unpacked.path(), "test").unwrap();
        assert_eq!(from_layout, original, "{}", image.name);
        assert_eq!(from_archive, original, "{}", image.name);
        // The sha256 `package` prints is what the fetchers compare a WasmPlugin's with.
        assert_eq!(digest, image.manifest_digest, "{}", image.name);
        assert_eq!(archive_digest, image.manifest_digest, "{}", image.name);
        assert_eq!(image.wasm_digest, sha256_hex(&original));
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(
                image
                    .layout
                    .join("blobs/sha256")
                    .join(&image.manifest_digest),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["mediaType"], OCI_MANIFEST);
        let layers = manifest["layers"].as_array().unwrap().len();
        let into = match image.variant {
            Variant::Compat => {
                assert_eq!(layers, 1, "{}", image.name);
                compat_modules.path()
            }
            Variant::Artifact => {
                assert_eq!(layers, 2, "{}", image.name);
                artifact_modules.path()
            }
        };
        std::fs::write(into.join(file), from_archive).unwrap();
    }
    // A broken blob is refused, as the fetchers refuse it.
    let routing = &images[0];
    let layer = std::fs::read_dir(routing.layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read(p).unwrap().starts_with(&[0x1f, 0x8b]))
        .unwrap();
    let mut bytes = std::fs::read(&layer).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&layer, bytes).unwrap();
    assert!(fetch(&routing.layout, "test")
        .unwrap_err()
        .contains("another digest"));

    // The extracted modules in Envoy: routing (Gateway API), TLS passthrough (tls filter), egress.
    let scenarios = [
        "testdata/scenarios/gateway-api/simple-same-namespace.yaml",
        "testdata/scenarios/tls/ingress-nginx-passthrough.yaml",
        "testdata/scenarios/egress/registry-only-tls.yaml",
    ];
    for modules in [compat_modules.path(), artifact_modules.path()] {
        let (output, passed) = run_envoy(modules, &scenarios);
        assert!(passed, "{output}");
        assert!(output.contains(" passed, 0 failed"), "{output}");
        assert!(!output.contains("skip"), "{output}");
    }
}
