//! Hostile archives: each must fail with a clear error or land inside the
//! root, and must never change anything beside it.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use super::{RawTar, Sandbox};
use crate::oci::tar_read::{UnpackError, Whiteouts};

fn is_bad_name(result: Result<crate::oci::UnpackStats, UnpackError>) -> String {
    match result {
        Err(e @ UnpackError::BadName { .. }) => e.to_string(),
        other => panic!("expected a BadName error, got {other:?}"),
    }
}

#[test]
fn parent_dir_names_are_rejected() {
    for name in ["../x", "a/../../x", "./../x", "/../x", "a/.."] {
        let sb = Sandbox::new();
        let tar = RawTar::new().dir("a/", 0o755).file(name, b"evil").finish();
        let msg = is_bad_name(sb.unpack(&tar, Whiteouts::Apply));
        assert!(msg.contains(name) && msg.contains(".."), "{msg}");
        sb.assert_outside_untouched();
    }
}

#[test]
fn absolute_names_are_neutralised_into_the_root() {
    let sb = Sandbox::new();
    let abs = sb.outside.join("secret").display().to_string();
    let tar = RawTar::new().file("/abs", b"one").file(&abs, b"two").finish();
    sb.unpack(&tar, Whiteouts::Apply).unwrap();
    assert_eq!(fs::read(sb.at("abs")).unwrap(), b"one");
    assert_eq!(fs::read(sb.at(abs.trim_start_matches('/'))).unwrap(), b"two");
    sb.assert_outside_untouched();
}

#[test]
fn writes_through_a_symlink_to_outside_stay_inside() {
    // No such directory inside the root: the write fails.
    let sb = Sandbox::new();
    let outside = sb.outside.display().to_string();
    let tar = RawTar::new().symlink("l", &outside).file("l/f", b"evil").finish();
    assert!(matches!(sb.unpack(&tar, Whiteouts::Apply), Err(UnpackError::Io { .. })));
    sb.assert_outside_untouched();

    // The same path exists inside the root: the write lands there.
    let sb = Sandbox::new();
    let outside = sb.outside.display().to_string();
    let in_root = outside.trim_start_matches('/');
    let tar = RawTar::new().dir(in_root, 0o755).symlink("l", &outside).file("l/f", b"in").finish();
    sb.unpack(&tar, Whiteouts::Apply).unwrap();
    assert_eq!(fs::read(sb.at(in_root).join("f")).unwrap(), b"in");
    sb.assert_outside_untouched();

    // A relative climb is clamped at the root.
    let sb = Sandbox::new();
    let tar = RawTar::new().dir("outside", 0o755).symlink("l", "../../../../outside").file("l/secret", b"in").finish();
    sb.unpack(&tar, Whiteouts::Apply).unwrap();
    assert_eq!(fs::read(sb.at("outside/secret")).unwrap(), b"in");
    sb.assert_outside_untouched();
}

#[test]
fn hardlinks_to_outside_are_rejected_or_resolved_inside() {
    let sb = Sandbox::new();
    let tar = RawTar::new().hardlink("h", "../../etc/passwd").finish();
    assert!(matches!(sb.unpack(&tar, Whiteouts::Apply), Err(UnpackError::BadLinkTarget { .. })));
    sb.assert_outside_untouched();

    let sb = Sandbox::new();
    let tar = RawTar::new().hardlink("h", "/etc/passwd").finish();
    let err = sb.unpack(&tar, Whiteouts::Apply).unwrap_err();
    assert!(matches!(err, UnpackError::BadLinkTarget { .. }) && err.to_string().contains("does not exist"), "{err}");
    assert!(!sb.at("h").exists());

    let sb = Sandbox::new();
    let secret = sb.outside.join("secret").display().to_string();
    let tar = RawTar::new().hardlink("h", &secret).finish();
    assert!(matches!(sb.unpack(&tar, Whiteouts::Apply), Err(UnpackError::BadLinkTarget { .. })));
    sb.assert_outside_untouched();

    let sb = Sandbox::new();
    let tar = RawTar::new().file("etc/passwd", b"root:x:0:0::/:/bin/sh\n").hardlink("h", "/etc/passwd").finish();
    sb.unpack(&tar, Whiteouts::Apply).unwrap();
    let (h, inside, host) =
        (sb.at("h").metadata().unwrap(), sb.at("etc/passwd").metadata().unwrap(), fs::metadata("/etc/passwd").unwrap());
    assert_eq!((h.dev(), h.ino()), (inside.dev(), inside.ino()));
    assert_ne!((h.dev(), h.ino()), (host.dev(), host.ino()));
    sb.assert_outside_untouched();
}

#[test]
fn hardlink_through_symlinked_parent_stays_inside() {
    let sb = Sandbox::new();
    let outside = sb.outside.display().to_string();
    let tar = RawTar::new().symlink("d", &outside).hardlink("h", "d/secret").finish();
    assert!(matches!(sb.unpack(&tar, Whiteouts::Apply), Err(UnpackError::BadLinkTarget { .. })));
    sb.assert_outside_untouched();
}

#[test]
fn dot_directory_through_symlink_does_not_chmod_outside() {
    let sb = Sandbox::new();
    let outside = sb.outside.display().to_string();
    let tar = RawTar::new().symlink("d", &outside).dir("d/.", 0o777).dir("d/./", 0o777).finish();
    sb.unpack(&tar, Whiteouts::Apply).unwrap();
    let d = fs::symlink_metadata(sb.at("d")).unwrap();
    assert!(d.is_dir(), "the symlink was replaced by a directory");
    assert_eq!(d.permissions().mode() & 0o7777, 0o777);
    sb.assert_outside_untouched();
}

#[test]
fn regular_file_replaces_a_symlink_instead_of_writing_through() {
    let sb = Sandbox::new();
    let secret = sb.outside.join("secret").display().to_string();
    let tar = RawTar::new().symlink("x", &secret).file("x", b"replaced").finish();
    sb.unpack(&tar, Whiteouts::Apply).unwrap();
    let x = fs::symlink_metadata(sb.at("x")).unwrap();
    assert!(x.is_file());
    assert_eq!(fs::read(sb.at("x")).unwrap(), b"replaced");
    sb.assert_outside_untouched();
}

#[test]
fn other_types_replace_a_symlink_too() {
    let sb = Sandbox::new();
    let secret = sb.outside.join("secret").display().to_string();
    let tar = RawTar::new()
        .symlink("a", &secret)
        .entry(tar::EntryType::Fifo, b"a", b"", 0o600, b"")
        .symlink("b", &secret)
        .symlink("b", "elsewhere")
        .symlink("c", &sb.outside.display().to_string())
        .dir("c", 0o700)
        .finish();
    sb.unpack(&tar, Whiteouts::Apply).unwrap();
    assert!(fs::symlink_metadata(sb.at("a")).unwrap().file_type().is_fifo());
    assert_eq!(fs::read_link(sb.at("b")).unwrap().to_str(), Some("elsewhere"));
    assert!(fs::symlink_metadata(sb.at("c")).unwrap().is_dir());
    sb.assert_outside_untouched();
}

#[test]
fn whiteouts_with_parent_names_are_rejected() {
    for mode in [Whiteouts::Apply, Whiteouts::Overlay] {
        for name in ["a/.wh...", ".wh...", ".wh.../etc", "a/.wh./x", ".wh."] {
            let sb = Sandbox::new();
            let tar = RawTar::new().dir("a/", 0o755).file(name, b"").finish();
            let err = sb.unpack(&tar, mode).unwrap_err();
            assert!(matches!(err, UnpackError::BadWhiteout { .. }), "{name}: {err}");
            assert!(err.to_string().contains(name), "{err}");
            sb.assert_outside_untouched();
        }
    }
}

#[test]
fn whiteouts_never_delete_through_symlinks() {
    for mode in [Whiteouts::Apply, Whiteouts::Overlay] {
        let sb = Sandbox::new();
        let secret = sb.outside.join("secret").display().to_string();
        let tar = RawTar::new().symlink("x", &secret).file(".wh.x", b"").finish();
        sb.unpack(&tar, mode).unwrap();
        let x = fs::symlink_metadata(sb.at("x")).ok().map(|m| m.file_type().is_char_device());
        assert_eq!(x, if mode == Whiteouts::Apply { None } else { Some(true) });
        sb.assert_outside_untouched();

        // `d` resolves to a directory inside the root that does not exist:
        // Apply has nothing to delete; Overlay cannot create the directory
        // the whiteout belongs in, because `d` is taken by the symlink.
        let sb = Sandbox::new();
        let outside = sb.outside.display().to_string();
        let tar = RawTar::new()
            .symlink("d", &outside)
            .file("d/.wh.secret", b"")
            .file("d/.wh.sub", b"")
            .file("d/.wh..wh..opq", b"")
            .finish();
        let result = sb.unpack(&tar, mode);
        match mode {
            Whiteouts::Apply => assert!(result.is_ok(), "{result:?}"),
            Whiteouts::Overlay => assert!(matches!(result, Err(UnpackError::Io { .. })), "{result:?}"),
        }
        sb.assert_outside_untouched();
    }
}

#[test]
fn root_cannot_be_replaced_and_root_links_stay_inside() {
    for name in ["/.", ".", "./", "/"] {
        let sb = Sandbox::new();
        let tar = RawTar::new().symlink(name, &sb.outside.display().to_string()).finish();
        let msg = is_bad_name(sb.unpack(&tar, Whiteouts::Apply));
        assert!(msg.contains("root"), "{msg}");
        assert!(fs::symlink_metadata(&sb.root).unwrap().is_dir());
        sb.assert_outside_untouched();
    }

    let sb = Sandbox::new();
    let tar = RawTar::new()
        .symlink("up", "/.")
        .file("up/etc/f", b"inside")
        .symlink("up2", "..")
        .file("up2/g", b"too")
        .finish();
    sb.unpack(&tar, Whiteouts::Apply).unwrap();
    assert_eq!(fs::read(sb.at("etc/f")).unwrap(), b"inside");
    assert_eq!(fs::read(sb.at("g")).unwrap(), b"too");
    sb.assert_outside_untouched();
}

#[test]
fn long_names_with_parent_dirs_are_rejected() {
    let long = format!("{}/../../../../outside/secret", "a".repeat(120));
    let sb = Sandbox::new();
    let tar = RawTar::new().gnu_long_name(long.as_bytes()).file("placeholder", b"evil").finish();
    is_bad_name(sb.unpack(&tar, Whiteouts::Apply));
    assert!(!sb.at("placeholder").exists());
    sb.assert_outside_untouched();

    let sb = Sandbox::new();
    let tar = RawTar::new().pax_path(b"../outside/secret").file("placeholder", b"evil").finish();
    is_bad_name(sb.unpack(&tar, Whiteouts::Apply));
    sb.assert_outside_untouched();

    let sb = Sandbox::new();
    let tar = RawTar::new().pax_path(b"a\0/../../x").file("placeholder", b"evil").finish();
    is_bad_name(sb.unpack(&tar, Whiteouts::Apply));
    sb.assert_outside_untouched();
}

#[test]
fn symlink_loops_and_file_parents_fail_cleanly() {
    let sb = Sandbox::new();
    let tar = RawTar::new().symlink("a", "a").file("a/f", b"").finish();
    assert!(matches!(sb.unpack(&tar, Whiteouts::Apply), Err(UnpackError::Io { .. })));
    sb.assert_outside_untouched();

    let sb = Sandbox::new();
    let tar = RawTar::new().file("a", b"").file("a/f", b"").finish();
    assert!(matches!(sb.unpack(&tar, Whiteouts::Apply), Err(UnpackError::Io { .. })));
    sb.assert_outside_untouched();
}

#[test]
fn directory_replaces_an_existing_file_and_file_replaces_a_directory() {
    let sb = Sandbox::new();
    let tar = RawTar::new()
        .file("a", b"x")
        .dir("a/", 0o750)
        .file("a/in", b"y")
        .file("b/c/d", b"z")
        .file("b", b"now a file")
        .finish();
    sb.unpack(&tar, Whiteouts::Apply).unwrap();
    assert!(sb.at("a").is_dir());
    assert_eq!(fs::metadata(sb.at("a")).unwrap().permissions().mode() & 0o7777, 0o750);
    assert_eq!(fs::read(sb.at("a/in")).unwrap(), b"y");
    assert_eq!(fs::read(sb.at("b")).unwrap(), b"now a file");
    sb.assert_outside_untouched();
}

#[test]
fn unknown_entry_types_are_rejected() {
    let sb = Sandbox::new();
    let tar = RawTar::new().entry(tar::EntryType::new(b'Z'), b"odd", b"", 0o644, b"").finish();
    assert!(matches!(sb.unpack(&tar, Whiteouts::Apply), Err(UnpackError::Unsupported { .. })));
    sb.assert_outside_untouched();
}

#[test]
#[should_panic(expected = "something outside the unpack root changed")]
fn sandbox_notices_changes_outside() {
    let sb = Sandbox::new();
    fs::write(sb.outside.join("sub/new"), b"").unwrap();
    sb.assert_outside_untouched();
}
