//! `portcullis oci`: the OCI image layout's manifest, config and layer digests match their bytes,
//! and the layer holds exactly the module as plugin.wasm (Istio's compat variant).

mod support;

use std::io::Read;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

fn sha256(b: &[u8]) -> String {
    format!(
        "sha256:{}",
        Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    )
}

fn blob(dir: &std::path::Path, digest: &str) -> Vec<u8> {
    let bytes = std::fs::read(
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert_eq!(
        sha256(&bytes),
        digest,
        "blob content does not match its digest"
    );
    bytes
}

#[test]
fn oci_layout_digests_match_and_the_layer_is_plugin_wasm() {
    let wasm = support::wasm_path("content-type");
    let out = std::env::temp_dir().join(format!("portcullis-oci-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("oci")
        .arg(&wasm)
        .arg(&out)
        .arg("0.1.0")
        .status()
        .unwrap();
    assert!(status.success());
    let layout: Value =
        serde_json::from_slice(&std::fs::read(out.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let m = &index["manifests"][0];
    assert_eq!(
        m["annotations"]["org.opencontainers.image.ref.name"],
        "0.1.0"
    );
    let manifest_bytes = blob(&out, m["digest"].as_str().unwrap());
    assert_eq!(m["size"], manifest_bytes.len());
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    let config = blob(&out, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(manifest["config"]["size"], config.len());
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "compat variant: a single layer");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let layer = blob(&out, layers[0]["digest"].as_str().unwrap());
    assert_eq!(layers[0]["size"], layer.len());
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&layer[..])
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let config: Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        sha256(&tar_bytes),
        "diff_id is the uncompressed layer"
    );
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut entries = archive.entries().unwrap();
    let mut entry = entries.next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some("plugin.wasm"));
    let mut inner = Vec::new();
    entry.read_to_end(&mut inner).unwrap();
    assert_eq!(inner, std::fs::read(&wasm).unwrap());
    assert!(entries.next().is_none());
    assert!(std::path::Path::new(&format!("{}.tar", out.display())).exists());
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_file(format!("{}.tar", out.display()));
}
