//! Editing OCI archives in tests: read an archive's files into memory,
//! change a manifest or a blob while keeping every digest and size
//! consistent (or deliberately not), and write the archive back.
//!
//! Use it from a test file on its own:
//!
//! ```ignore
//! #[path = "support/oci_edit.rs"]
//! mod oci_edit;
//! ```

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;
use sha2::Digest as _;

/// The files of an archive, by name.
pub struct Archive {
    pub files: BTreeMap<String, Vec<u8>>,
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// The archive name of the blob `digest`.
pub fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.strip_prefix("sha256:").expect("a sha256 digest"))
}

impl Archive {
    /// Reads every regular file of the archive at `path`.
    pub fn read(path: &Path) -> Archive {
        let mut files = BTreeMap::new();
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        for entry in tar::Archive::new(file).entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.header().entry_type().is_file() {
                let name = entry.path().unwrap().to_string_lossy().into_owned();
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                files.insert(name, bytes);
            }
        }
        Archive { files }
    }

    /// Writes the files as a tar at `path`.
    pub fn write(&self, path: &Path) {
        let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
        for (name, bytes) in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, &bytes[..]).unwrap();
        }
        builder.into_inner().unwrap();
    }

    pub fn json(&self, name: &str) -> Value {
        serde_json::from_slice(&self.files[name]).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
    }

    /// The first `index.json` entry's manifest.
    pub fn manifest(&self) -> Value {
        let digest = self.json("index.json")["manifests"][0]["digest"].as_str().unwrap().to_owned();
        self.json(&blob_name(&digest))
    }

    /// Stores `bytes` as a blob; returns its digest and size.
    pub fn put_blob(&mut self, bytes: Vec<u8>) -> (String, usize) {
        let (d, size) = (digest(&bytes), bytes.len());
        self.files.insert(blob_name(&d), bytes);
        (d, size)
    }

    /// Replaces the first image's manifest with `manifest`, pointing every
    /// `index.json` entry of the old one (and `manifest.json`, dropped) at the
    /// new blob, so that the archive stays consistent.
    pub fn set_manifest(&mut self, manifest: &Value) {
        let mut index = self.json("index.json");
        let old = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
        self.files.remove(&blob_name(&old));
        let (new, size) = self.put_blob(serde_json::to_vec(manifest).unwrap());
        for entry in index["manifests"].as_array_mut().unwrap() {
            if entry["digest"] == old.as_str() {
                entry["digest"] = new.clone().into();
                entry["size"] = size.into();
            }
        }
        self.files.insert("index.json".to_owned(), serde_json::to_vec(&index).unwrap());
        self.files.remove("manifest.json");
    }

    /// Replaces the first image's only layer with `layer` of `media_type`,
    /// whose uncompressed tar is `diff_tar`: a consistent image with new
    /// content.
    pub fn set_layer(&mut self, layer: Vec<u8>, media_type: &str, diff_tar: &[u8]) {
        let mut manifest = self.manifest();
        let config_digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
        let mut config = self.json(&blob_name(&config_digest));
        config["rootfs"]["diff_ids"] = serde_json::json!([digest(diff_tar)]);
        let (config_digest, config_size) = self.put_blob(serde_json::to_vec(&config).unwrap());
        let (layer_digest, layer_size) = self.put_blob(layer);
        manifest["config"]["digest"] = config_digest.into();
        manifest["config"]["size"] = config_size.into();
        manifest["layers"] =
            serde_json::json!([{ "mediaType": media_type, "digest": layer_digest, "size": layer_size }]);
        self.set_manifest(&manifest);
    }
}

/// A tar holding one file named `name` (written as is, so `../x` works).
pub fn tar_with_raw_name(name: &str, body: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(body);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// `bytes` gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// `bytes` gunzipped.
pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}
