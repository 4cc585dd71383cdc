//! The layer writer: reproducible bytes, header rules, digests, whiteouts.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::Digest as _;
use tar::EntryType;

use super::tar_names;
use crate::oci::Digest;
use crate::oci::tar_write::{Compression, LayerDigests, LayerWriter, MtimePolicy, write_tree};
use crate::sys::fs as sysfs;

/// The epoch the tests clamp to (2020-09-13).
pub const EPOCH: u64 = 1_600_000_000;
/// An mtime before [`EPOCH`], kept as is.
pub const PAST: u64 = 1_000_000;

/// A 20-byte VFS_CAP_REVISION_2 value granting CAP_NET_BIND_SERVICE.
pub const CAP_NET_BIND: [u8; 20] = [0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

pub fn set_mtime(path: &Path, mtime: u64) {
    let parent = sysfs::open_dir(path.parent().unwrap()).unwrap();
    sysfs::set_mtime_at_nofollow(std::os::fd::AsFd::as_fd(&parent), path.file_name().unwrap(), mtime).unwrap();
}

/// A tree with every kind of object the writer handles. `future` is some
/// mtime after [`EPOCH`]; it differs between calls and must not matter.
pub fn build_tree(dir: &Path, future: u64) {
    let p = |rel: &str| dir.join(rel);
    fs::create_dir_all(p("a/b")).unwrap();
    fs::create_dir_all(p("empty")).unwrap();
    fs::create_dir_all(p("z")).unwrap();
    fs::write(p("a/b/file.txt"), b"hello\n").unwrap();
    fs::write(p("top.txt"), b"top").unwrap();
    fs::write(p("a-b"), b"sorts between a and a/").unwrap();
    fs::write(p("setuid"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(p("setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(p("a/hard1"), b"linked").unwrap();
    fs::hard_link(p("a/hard1"), p("z/hard2")).unwrap();
    symlink("a/b/file.txt", p("link")).unwrap();
    fs::write(p("owned"), b"mine").unwrap();
    std::os::unix::fs::chown(p("owned"), Some(1234), Some(5678)).unwrap();
    let cap = fs::File::open(p("setuid")).unwrap();
    sysfs::set_xattr_fd(std::os::fd::AsFd::as_fd(&cap), "security.capability", &CAP_NET_BIND).unwrap();
    let top = sysfs::open_dir(dir).unwrap();
    let top = std::os::fd::AsFd::as_fd(&top);
    sysfs::mknod_at(top, "pipe".as_ref(), sysfs::NodeKind::Fifo, 0o640, 0, 0).unwrap();
    sysfs::mknod_at(top, "null".as_ref(), sysfs::NodeKind::CharDevice, 0o666, 1, 3).unwrap();
    sysfs::chmod_at_nofollow(top, "null".as_ref(), 0o666).unwrap();
    for (rel, mtime) in [
        ("a/b/file.txt", future),
        ("top.txt", PAST),
        ("a-b", PAST + 1),
        ("setuid", future),
        ("a/hard1", PAST + 2),
        ("link", future),
        ("owned", PAST + 3),
        ("pipe", PAST + 4),
        ("null", future),
        ("a/b", PAST + 5),
        ("a", future),
        ("empty", PAST + 6),
        ("z", future),
    ] {
        set_mtime(&p(rel), mtime);
    }
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

pub fn layer(root: &Path, compression: Compression) -> (Vec<u8>, LayerDigests) {
    write_tree(root, Vec::new(), compression, MtimePolicy::Clamp(EPOCH)).unwrap()
}

fn sha256(bytes: &[u8]) -> Digest {
    Digest::from_sha256(sha2::Sha256::digest(bytes).into())
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// The raw headers of a tar, `x` headers included: (type, name field).
fn raw_headers(tar: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|&b| b != 0) {
        let header = tar::Header::from_byte_slice(&tar[at..at + 512]);
        out.push((header.entry_type().as_byte(), header.path_bytes().into_owned()));
        at += 512 + (header.size().unwrap() as usize).div_ceil(512) * 512;
    }
    out
}

#[test]
fn same_tree_gives_identical_bytes() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build_tree(one.path(), now() + 100_000_000);
    build_tree(two.path(), now() + 200_000_000);
    for compression in [Compression::None, Compression::Gzip] {
        let (bytes_a, digests_a) = layer(one.path(), compression);
        let (bytes_b, digests_b) = layer(one.path(), compression);
        let (bytes_c, digests_c) = layer(two.path(), compression);
        assert!(bytes_a == bytes_b && bytes_a == bytes_c, "{compression:?} layers differ");
        assert_eq!(digests_a, digests_b);
        assert_eq!(digests_a, digests_c);
        assert_eq!(digests_a.media_type, compression.media_type());
    }
}

#[test]
fn digests_match_an_independent_hash() {
    let dir = tempfile::tempdir().unwrap();
    build_tree(dir.path(), now() + 1000);
    let (plain, plain_digests) = layer(dir.path(), Compression::None);
    assert_eq!(plain_digests.diff_id, sha256(&plain));
    assert_eq!(plain_digests.digest, sha256(&plain));
    assert_eq!(plain_digests.size, plain.len() as u64);

    let (gz, gz_digests) = layer(dir.path(), Compression::Gzip);
    assert_eq!(gz_digests.digest, sha256(&gz));
    assert_eq!(gz_digests.size, gz.len() as u64);
    assert_eq!(gz_digests.diff_id, sha256(&gunzip(&gz)));
    assert_eq!(gz_digests.diff_id, plain_digests.diff_id);
    // Deterministic gzip header: no flags (no file name), mtime 0, OS unknown.
    assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&gz[4..8], &[0, 0, 0, 0]);
    assert_eq!(gz[9], 255);
}

#[test]
fn entries_are_sorted_with_clamped_times_and_numeric_owners() {
    let dir = tempfile::tempdir().unwrap();
    build_tree(dir.path(), now() + 1000);
    let (tar, _) = layer(dir.path(), Compression::None);
    let names = tar_names(&tar);
    // Component by component: `a`'s subtree comes before its sibling `a-b`.
    let expected = [
        "a/",
        "a/b/",
        "a/b/file.txt",
        "a/hard1",
        "a-b",
        "empty/",
        "link",
        "null",
        "owned",
        "pipe",
        "setuid",
        "top.txt",
        "z/",
        "z/hard2",
    ];
    assert_eq!(names, expected);

    let mut archive = tar::Archive::new(tar.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let h = entry.header().clone();
        assert!(h.as_ustar().is_some(), "{name}: not a ustar header");
        assert_eq!(h.username_bytes(), Some(&b""[..]), "{name}");
        assert_eq!(h.groupname_bytes(), Some(&b""[..]), "{name}");
        let (mtime, mode, uid, gid) = (h.mtime().unwrap(), h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap());
        let want_mtime = match name.as_str() {
            "top.txt" => PAST,
            "a-b" => PAST + 1,
            "a/hard1" | "z/hard2" => PAST + 2,
            "owned" => PAST + 3,
            "pipe" => PAST + 4,
            "a/b/" => PAST + 5,
            "empty/" => PAST + 6,
            _ => EPOCH,
        };
        assert_eq!(mtime, want_mtime, "{name}");
        assert_eq!((uid, gid), if name == "owned" { (1234, 5678) } else { (0, 0) }, "{name}");
        match name.as_str() {
            "setuid" => {
                assert_eq!(mode, 0o4755);
                let pax: Vec<_> =
                    entry.pax_extensions().unwrap().unwrap().map(|r| r.unwrap().key().unwrap().to_owned()).collect();
                assert_eq!(pax, ["SCHILY.xattr.security.capability"]);
            }
            "z/hard2" => {
                assert_eq!(h.entry_type(), EntryType::Link);
                assert_eq!(h.link_name_bytes().as_deref(), Some(&b"a/hard1"[..]));
                assert_eq!(h.size().unwrap(), 0);
            }
            "link" => assert_eq!(h.link_name_bytes().as_deref(), Some(&b"a/b/file.txt"[..])),
            "null" => assert_eq!(
                (h.entry_type(), h.device_major().unwrap(), h.device_minor().unwrap()),
                (EntryType::Char, Some(1), Some(3))
            ),
            "pipe" => assert_eq!((h.entry_type(), mode), (EntryType::Fifo, 0o640)),
            n if n.ends_with('/') => assert_eq!(h.entry_type(), EntryType::Directory),
            _ => {}
        }
    }
    // Only the file with a capability needs a PAX header.
    let pax: Vec<_> = raw_headers(&tar).into_iter().filter(|(t, _)| *t == b'x').map(|(_, n)| n).collect();
    assert_eq!(pax, [b"PaxHeaders/setuid".to_vec()]);
}

#[test]
fn whiteout_and_opaque_names() {
    let mut writer = LayerWriter::new(Vec::new(), Compression::None, MtimePolicy::Clamp(EPOCH));
    writer.add_opaque(Path::new("")).unwrap();
    writer.add_whiteout(Path::new("top")).unwrap();
    writer.add_opaque(Path::new("a")).unwrap();
    writer.add_whiteout(Path::new("a/b/c")).unwrap();
    assert!(writer.add_whiteout(Path::new("../x")).is_err());
    assert!(writer.add_whiteout(Path::new("")).is_err());
    let (tar, _) = writer.finish().unwrap();
    assert_eq!(tar_names(&tar), [".wh..wh..opq", ".wh.top", "a/.wh..wh..opq", "a/b/.wh.c"]);
}

/// Whiteouts, opaque markers and implied directories get the epoch when
/// mtimes are clamped and 0 when they are kept (a commit); a kept mtime past
/// 2242 is written and read back whole.
#[test]
fn entries_no_tree_holds_get_a_defined_mtime() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("future"), b"later").unwrap();
    let y2300 = 10_413_792_000;
    set_mtime(&dir.path().join("future"), y2300);
    for (policy, synthetic, future) in [(MtimePolicy::Clamp(EPOCH), EPOCH, EPOCH), (MtimePolicy::Keep, 0, y2300)] {
        let mut writer = LayerWriter::new(Vec::new(), Compression::None, policy);
        writer.add_dir(Path::new("bin"), 0o755).unwrap();
        writer.add_whiteout(Path::new("bin/vi")).unwrap();
        writer.add_opaque(Path::new("home")).unwrap();
        writer.add(Path::new("future"), &dir.path().join("future")).unwrap();
        let (tar, _) = writer.finish().unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mtimes: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (String::from_utf8_lossy(&e.path_bytes()).into_owned(), e.header().mtime().unwrap())
            })
            .collect();
        let want =
            [("bin/", synthetic), ("bin/.wh.vi", synthetic), ("home/.wh..wh..opq", synthetic), ("future", future)];
        let want: Vec<_> = want.iter().map(|(n, t)| (n.to_string(), *t)).collect();
        assert_eq!(mtimes, want, "{policy:?}");
    }
}

#[test]
fn long_names_and_link_targets_use_pax_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let deep: PathBuf = (0..6).map(|i| format!("{i}{}", "d".repeat(50))).collect();
    fs::create_dir_all(dir.path().join(&deep)).unwrap();
    let long_file = deep.join("f".repeat(120));
    fs::write(dir.path().join(&long_file), b"deep").unwrap();
    let target = "t".repeat(150);
    symlink(&target, dir.path().join("longlink")).unwrap();
    let (tar, _) = layer(dir.path(), Compression::None);
    assert_eq!(layer(dir.path(), Compression::None).0, tar);

    let names = tar_names(&tar);
    assert!(names.contains(&long_file.display().to_string()), "{names:?}");
    assert!(names.contains(&format!("{}/", deep.display())), "{names:?}");
    let mut archive = tar::Archive::new(tar.as_slice());
    let link = archive.entries().unwrap().map(|e| e.unwrap()).find(|e| e.path_bytes().as_ref() == b"longlink").unwrap();
    assert_eq!(link.link_name_bytes().as_deref(), Some(target.as_bytes()));
    assert!(raw_headers(&tar).iter().any(|(t, _)| *t == b'x'));
}

#[test]
fn add_refuses_bad_names_and_missing_sources() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = LayerWriter::new(Vec::new(), Compression::None, MtimePolicy::Clamp(EPOCH));
    for bad in ["/abs", "../up", "", "./x"] {
        assert!(writer.add(Path::new(bad), dir.path()).is_err(), "{bad}");
    }
    let err = writer.add(Path::new("gone"), &dir.path().join("gone")).unwrap_err();
    assert!(err.to_string().contains("gone"), "{err}");
}
