//! Media types: which role a blob may play (manifest, index, config,
//! layer), how a layer is compressed, and the annotations that name images.
//!
//! Both the OCI names and Docker's (manifest v2 schema 2, manifest list,
//! `rootfs.diff.tar.gzip`) are accepted when reading; berth writes the OCI
//! ones.

use std::io::{self, Read};

/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// A Docker image manifest, v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// An OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// A Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// An OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// A Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The OCI annotation naming an image in a layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = oci_spec::image::ANNOTATION_REF_NAME;
/// The fully qualified name containerd, Docker 25+ and podman read from
/// `index.json`, such as `docker.io/library/busybox:latest`.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Whether `media_type` names an image manifest (OCI or Docker).
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Whether `media_type` names an image index (OCI, or a Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// Whether `media_type` names an image config (OCI or Docker).
pub fn is_config(media_type: &str) -> bool {
    media_type == OCI_CONFIG || media_type == DOCKER_CONFIG
}

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

impl LayerCompression {
    /// The OCI layer media type for a layer compressed this way.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            LayerCompression::None => "application/vnd.oci.image.layer.v1.tar",
            LayerCompression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            LayerCompression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// `reader` decompressed: the uncompressed tar, whose sha256 is the diffID.
    pub fn decompress<'a>(self, reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            LayerCompression::None => Box::new(reader),
            LayerCompression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
            LayerCompression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
        })
    }
}

/// The compression of a layer of `media_type`, or `None` when it is not a
/// layer berth reads: OCI `…layer.v1.tar[+gzip|+zstd]` (also
/// nondistributable) and Docker's `…rootfs.diff.tar[.gzip]` (also foreign).
pub fn layer_compression(media_type: &str) -> Option<LayerCompression> {
    let oci = media_type.strip_prefix("application/vnd.oci.image.layer.");
    let oci = oci.and_then(|rest| rest.strip_prefix("v1.").or_else(|| rest.strip_prefix("nondistributable.v1.")));
    if let Some(rest) = oci {
        return match rest {
            "tar" => Some(LayerCompression::None),
            "tar+gzip" => Some(LayerCompression::Gzip),
            "tar+zstd" => Some(LayerCompression::Zstd),
            _ => None,
        };
    }
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar" => Some(LayerCompression::None),
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(LayerCompression::Gzip),
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => Some(LayerCompression::Zstd),
        _ => None,
    }
}

/// The compression of a layer file from its first bytes (for `docker save`
/// archives, whose layers have no media type).
pub fn sniff_compression(magic: &[u8]) -> LayerCompression {
    match magic {
        [0x1f, 0x8b, ..] => LayerCompression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => LayerCompression::Zstd,
        _ => LayerCompression::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_media_types() {
        use LayerCompression::*;
        let cases = [
            ("application/vnd.oci.image.layer.v1.tar", Some(None)),
            ("application/vnd.oci.image.layer.v1.tar+gzip", Some(Gzip)),
            ("application/vnd.oci.image.layer.v1.tar+zstd", Some(Zstd)),
            ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Some(Gzip)),
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", Some(Gzip)),
            ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Some(Gzip)),
            ("application/vnd.oci.image.layer.v1.tar+bzip2", Option::None),
            (OCI_CONFIG, Option::None),
            (OCI_MANIFEST, Option::None),
            ("text/plain", Option::None),
        ];
        for (media_type, expected) in cases {
            assert_eq!(layer_compression(media_type), expected, "{media_type}");
        }
    }

    #[test]
    fn roles_do_not_overlap() {
        for t in [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST, OCI_CONFIG, DOCKER_CONFIG] {
            let roles = [is_manifest(t), is_index(t), is_config(t), layer_compression(t).is_some()];
            assert_eq!(roles.iter().filter(|r| **r).count(), 1, "{t}");
        }
    }

    #[test]
    fn compression_from_magic_and_back() {
        assert_eq!(sniff_compression(&[0x1f, 0x8b, 8, 0]), LayerCompression::Gzip);
        assert_eq!(sniff_compression(&[0x28, 0xb5, 0x2f, 0xfd]), LayerCompression::Zstd);
        assert_eq!(sniff_compression(b"etc/"), LayerCompression::None);
        assert_eq!(sniff_compression(b""), LayerCompression::None);
        for c in [LayerCompression::None, LayerCompression::Gzip, LayerCompression::Zstd] {
            assert_eq!(layer_compression(c.oci_media_type()), Some(c));
        }
    }

    #[test]
    fn zstd_decompresses() {
        let packed = zstd::encode_all(&b"hello layer"[..], 3).unwrap();
        let mut out = String::new();
        LayerCompression::Zstd.decompress(&packed[..]).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello layer");
    }
}
