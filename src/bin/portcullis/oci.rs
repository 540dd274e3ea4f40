//! `portcullis oci MODULE.wasm OUTDIR [TAG]`: package a module as an OCI image in the Istio/Envoy
//! wasm image format, compat variant (one gzipped tar layer holding `plugin.wasm`), written as an
//! OCI image layout directory and a tarball of it. No Docker engine needed; push it with
//! `oras cp --from-oci-layout OUTDIR:TAG REGISTRY/REPO:TAG` or `crane push OUTDIR.tar …`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::values::{self, BytesFile};

/// An Istio/Envoy wasm OCI image of a module (OCI layout OUTDIR and OUTDIR.tar)
///
/// No Docker engine needed; push it with `oras cp --from-oci-layout OUTDIR:TAG REGISTRY/REPO:TAG`
/// or `crane push OUTDIR.tar REGISTRY/REPO:TAG`.
#[derive(clap::Args)]
pub struct Args {
    /// The module to package (`dist/content-type.wasm`).
    #[arg(value_name = "MODULE.wasm", value_parser = values::bytes_file)]
    wasm: BytesFile,
    /// The image layout directory to write (replaced if it exists), and OUTDIR.tar.
    #[arg(value_name = "OUTDIR")]
    out: String,
    /// The image's tag (`org.opencontainers.image.ref.name`).
    #[arg(default_value = "latest")]
    tag: String,
}

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn sha256(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A reproducible tar (fixed mtime, owner, mode) with `plugin.wasm`.
fn layer_tar(wasm: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(wasm.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append_data(&mut h, "plugin.wasm", wasm)?;
    b.into_inner()
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    e.write_all(bytes)?;
    e.finish()
}

fn write_blob(dir: &Path, bytes: &[u8]) -> std::io::Result<String> {
    let digest = sha256(bytes);
    let hex = digest.trim_start_matches("sha256:");
    std::fs::write(dir.join("blobs/sha256").join(hex), bytes)?;
    Ok(digest)
}

pub fn build(wasm: &[u8], out: &str, tag: &str) -> std::io::Result<String> {
    let dir = Path::new(out);
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("blobs/sha256"))?;
    let tar = layer_tar(wasm)?;
    let layer = gzip(&tar)?;
    let layer_digest = write_blob(dir, &layer)?;
    let config = serde_json::to_vec(&json!({
        "architecture": "wasm",
        "os": "wasip1",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&tar)]},
        "config": {}
    }))?;
    let config_digest = write_blob(dir, &config)?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": LAYER, "digest": layer_digest, "size": layer.len()}],
        "annotations": {"module.wasm.image/variant": "compat-smart"}
    }))?;
    let manifest_digest = write_blob(dir, &manifest)?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": MANIFEST, "digest": manifest_digest, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec_pretty(&index)?)?;
    // The same layout as one tarball (what `crane push` / `skopeo copy oci-archive:` take).
    let mut t = tar::Builder::new(std::fs::File::create(format!("{out}.tar"))?);
    t.mode(tar::HeaderMode::Deterministic);
    t.append_dir_all(".", dir)?;
    t.finish()?;
    Ok(manifest_digest)
}

pub fn run(a: Args) -> ExitCode {
    let (out, tag) = (&a.out, &a.tag);
    match build(&a.wasm.bytes, out, tag) {
        Ok(digest) => {
            println!("{out}: OCI image layout ({tag}, manifest {digest}); {out}.tar");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oci: {} -> {out}: {e}", a.wasm.path);
            ExitCode::from(crate::FAILED)
        }
    }
}
