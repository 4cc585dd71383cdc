//! Writer and reader together: what `write_tree` writes, `unpack` restores;
//! whiteouts are applied or kept for overlayfs.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::writer::{CAP_NET_BIND, EPOCH, build_tree, layer, now};
use super::{RawTar, Sandbox};
use crate::oci::tar_read::{UnpackOptions, Whiteouts, unpack, unpack_compressed};
use crate::oci::tar_write::{Compression, LayerWriter, MtimePolicy};
use crate::sys::fs as sysfs;

/// Everything below `root` that a layer carries: kind and mode, owner,
/// clamped mtime, size, contents or link target, device number.
fn contents(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<String, String>) {
    for entry in fs::read_dir(root.join(rel)).unwrap() {
        let rel = rel.join(entry.unwrap().file_name());
        let path = root.join(&rel);
        let m = fs::symlink_metadata(&path).unwrap();
        let body = if m.is_file() {
            String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned()
        } else if m.file_type().is_symlink() {
            fs::read_link(&path).unwrap().display().to_string()
        } else {
            String::new()
        };
        let mtime = (m.mtime() as u64).min(EPOCH);
        let line = format!("{:o} {}:{} {mtime} {} rdev={} {body}", m.mode(), m.uid(), m.gid(), m.len(), m.rdev());
        out.insert(rel.display().to_string(), line);
        if m.is_dir() {
            walk(root, &rel, out);
        }
    }
}

fn opts(whiteouts: Whiteouts) -> UnpackOptions {
    UnpackOptions { whiteouts, preserve_owners: true }
}

#[test]
fn write_then_unpack_restores_the_tree() {
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build_tree(src.path(), now() + 1000);
    let (tar, _) = layer(src.path(), Compression::None);
    let stats = unpack(tar.as_slice(), dst.path(), &opts(Whiteouts::Apply)).unwrap();
    assert_eq!(stats.entries, 14);
    assert_eq!(stats.bytes, 6 + 3 + 22 + 10 + 6 + 4);

    assert_eq!(contents(dst.path()), contents(src.path()));
    let (one, two) =
        (fs::metadata(dst.path().join("a/hard1")).unwrap(), fs::metadata(dst.path().join("z/hard2")).unwrap());
    assert_eq!((one.ino(), one.nlink()), (two.ino(), 2));
    assert!(dst.path().join("empty").is_dir());
    let cap = sysfs::get_xattr_nofollow(&dst.path().join("setuid"), "security.capability").unwrap();
    assert_eq!(cap.as_deref(), Some(&CAP_NET_BIND[..]));

    // Unpacked and written again, the tree gives the very same layer.
    let (again, _) = layer(dst.path(), Compression::None);
    assert!(again == tar, "re-written layer differs");
}

#[test]
fn gzip_layers_are_sniffed_and_unpacked() {
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build_tree(src.path(), now() + 1000);
    let (gz, _) = layer(src.path(), Compression::Gzip);
    unpack_compressed(gz.as_slice(), dst.path(), &opts(Whiteouts::Apply)).unwrap();
    assert_eq!(contents(dst.path()), contents(src.path()));

    let plain_dst = tempfile::tempdir().unwrap();
    let (tar, _) = layer(src.path(), Compression::None);
    unpack_compressed(tar.as_slice(), plain_dst.path(), &opts(Whiteouts::Apply)).unwrap();
    assert_eq!(contents(plain_dst.path()), contents(src.path()));
}

#[test]
fn directory_modes_and_times_are_set_after_their_contents() {
    let sb = Sandbox::new();
    let tar = RawTar::new().dir("ro/", 0o555).file("ro/f", b"x").dir("./", 0o751).finish();
    sb.unpack(&tar, Whiteouts::Apply).unwrap();
    let ro = fs::metadata(sb.at("ro")).unwrap();
    assert_eq!((ro.mode() & 0o7777, ro.mtime()), (0o555, 1_000_000));
    let root = fs::metadata(&sb.root).unwrap();
    assert_eq!((root.mode() & 0o7777, root.mtime()), (0o751, 1_000_000));
    sb.assert_outside_untouched();
}

/// A lower layer, then an upper one that deletes `a/b`, makes `d` opaque
/// (keeping what it adds itself) and adds `d/g`.
fn lower_and_upper() -> (Vec<u8>, Vec<u8>) {
    let lower = RawTar::new()
        .dir("a/", 0o755)
        .file("a/b", b"b")
        .file("a/c", b"c")
        .dir("d/", 0o755)
        .file("d/e", b"e")
        .dir("d/sub/", 0o755)
        .file("d/sub/f", b"f")
        .finish();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/-early"), b"kept").unwrap();
    fs::create_dir_all(src.join("d/-implicit")).unwrap();
    fs::write(src.join("d/-implicit/f"), b"kept too").unwrap();
    fs::write(src.join("d/g"), b"g").unwrap();
    let mut writer = LayerWriter::new(Vec::new(), Compression::None, MtimePolicy::Clamp(EPOCH));
    writer.add_whiteout(Path::new("a/b")).unwrap();
    writer.add(Path::new("d"), &src.join("d")).unwrap();
    writer.add(Path::new("d/-early"), &src.join("d/-early")).unwrap();
    // No entry for `d/-implicit/`: the reader creates it.
    writer.add(Path::new("d/-implicit/f"), &src.join("d/-implicit/f")).unwrap();
    writer.add_opaque(Path::new("d")).unwrap();
    writer.add(Path::new("d/g"), &src.join("d/g")).unwrap();
    writer.add_whiteout(Path::new("gone/x")).unwrap();
    writer.add_whiteout(Path::new("a/c/under-a-file")).unwrap();
    let upper = writer.finish().unwrap().0;
    (lower, upper)
}

#[test]
fn apply_mode_deletes_whited_out_paths() {
    let sb = Sandbox::new();
    let (lower, upper) = lower_and_upper();
    sb.unpack(&lower, Whiteouts::Apply).unwrap();
    sb.unpack(&upper, Whiteouts::Apply).unwrap();
    let mut names: Vec<_> = contents(&sb.root).into_keys().collect();
    names.sort();
    assert_eq!(names, ["a", "a/c", "d", "d/-early", "d/-implicit", "d/-implicit/f", "d/g"]);
    sb.assert_outside_untouched();
}

#[test]
fn overlay_mode_keeps_whiteouts_as_devices_and_xattrs() {
    let sb = Sandbox::new();
    let (_, upper) = lower_and_upper();
    sb.unpack(&upper, Whiteouts::Overlay).unwrap();
    for rel in ["a/b", "gone/x"] {
        let m = fs::symlink_metadata(sb.at(rel)).unwrap();
        assert!(m.file_type().is_char_device(), "{rel}");
        assert_eq!((m.rdev(), m.uid(), m.gid()), (0, 0, 0), "{rel}");
    }
    let opaque = sysfs::get_xattr_nofollow(&sb.at("d"), "trusted.overlay.opaque").unwrap();
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    assert!(!sb.at("a/.wh.b").exists() && !sb.at("d/.wh..wh..opq").exists());
    assert_eq!(fs::read(sb.at("d/g")).unwrap(), b"g");
    sb.assert_outside_untouched();
}

#[test]
fn only_the_capability_xattr_is_applied() {
    let sb = Sandbox::new();
    let mut records = b"41 SCHILY.xattr.trusted.overlay.opaque=y\n".to_vec();
    records.extend_from_slice(b"57 SCHILY.xattr.security.capability=");
    records.extend_from_slice(&CAP_NET_BIND);
    records.push(b'\n');
    let tar =
        RawTar::new().entry(tar::EntryType::XHeader, b"PaxHeaders/f", b"", 0o644, &records).file("f", b"").finish();
    sb.unpack(&tar, Whiteouts::Apply).unwrap();
    let get = |key| sysfs::get_xattr_nofollow(&sb.at("f"), key).unwrap();
    assert_eq!(get("trusted.overlay.opaque"), None);
    assert_eq!(get("security.capability").as_deref(), Some(&CAP_NET_BIND[..]));
}

#[test]
fn pax_uid_gid_and_mtime_override_the_header() {
    // As Go's archive/tar writes them: the header fields 0, the values in PAX.
    let sb = Sandbox::new();
    let records: &[(&str, &[u8])] = &[("uid", b"3000000"), ("gid", b"3000001"), ("mtime", b"1700000000.5")];
    let tar = RawTar::new().mtime(0).pax(records).file("f", b"x").pax(records).dir("d", 0o755).finish();
    sb.unpack(&tar, Whiteouts::Apply).unwrap();
    for name in ["f", "d"] {
        let m = fs::symlink_metadata(sb.at(name)).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mtime()), (3_000_000, 3_000_001, 1_700_000_000), "{name}");
    }
}

#[test]
fn a_malformed_pax_mtime_is_an_error_naming_the_entry() {
    let sb = Sandbox::new();
    let tar = RawTar::new().pax(&[("mtime", b"soon")]).file("f", b"x").finish();
    let err = sb.unpack(&tar, Whiteouts::Apply).unwrap_err().to_string();
    assert!(err.contains("\"f\"") && err.contains("PAX mtime") && err.contains("soon"), "{err}");
}
