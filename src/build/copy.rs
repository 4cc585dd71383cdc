//! A `copy` step's layer, written straight from the project directory —
//! no build container needed: the entries the cache key hashed (honouring
//! `.berthignore`), placed at the destination as Docker's `COPY` places
//! them, owned by root (or `owner`) and with `mode` when given, mtimes
//! clamped to the epoch; a directory's contents go into the image's own
//! `dest` as it is, or into a new one 0755 (`mode` does not reach it, as
//! with BuildKit); plus the destination's parent directories: those
//! the image below has as they are there (so that overlayfs does not show
//! `/home/user` turned root's by a copy into it), missing ones 0755 root.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::manifest::Copy;
use crate::oci::{Compression, LayerDigests, LayerWriter, MtimePolicy, Overrides, TarWriteError};
use crate::resolve::tree::{self, TreeError};

/// Why a copy layer could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("copy {src} -> {dest}: {source}")]
    Source { src: String, dest: String, source: Box<TreeError> },
    #[error("copy {src} -> {dest}: {source}")]
    Write { src: String, dest: String, source: TarWriteError },
}

/// Where each copied entry lands: Docker's rules. A directory's *contents*
/// go into `dest`; a file (or symlink) becomes `dest`, or `dest/NAME` when
/// `dest` ends with `/`.
fn destination(copy: &Copy, src_is_dir: bool) -> PathBuf {
    let dest = Path::new(copy.dest.trim_start_matches('/'));
    if !src_is_dir && copy.dest.ends_with('/') {
        dest.join(copy.src.file_name().unwrap_or_default())
    } else {
        dest.to_path_buf()
    }
}

/// Writes the layer of `copy` (sources under `project_dir`) into `out`.
/// `owner` is the resolved `(uid, gid)` of `copy.owner`, root when `None`.
pub fn write_layer<W: Write>(
    project_dir: &Path,
    copy: &Copy,
    lowers: &[PathBuf],
    owner: Option<(u32, u32)>,
    out: W,
    epoch: u64,
    compression: Compression,
) -> Result<(W, LayerDigests), CopyError> {
    write_layer_with(project_dir, copy, tree::Rules::Berthignore, lowers, owner, out, epoch, compression)
}

/// [`write_layer`] reading the sources under the ignore rules `rules` (a
/// Dockerfile's COPY of a context path applies `.dockerignore`). `lowers`
/// are the layers below (top first), whose directories the parents keep.
#[allow(clippy::too_many_arguments)]
pub fn write_layer_with<W: Write>(
    project_dir: &Path,
    copy: &Copy,
    rules: tree::Rules<'_>,
    lowers: &[PathBuf],
    owner: Option<(u32, u32)>,
    out: W,
    epoch: u64,
    compression: Compression,
) -> Result<(W, LayerDigests), CopyError> {
    let src = copy.src.display().to_string();
    let werr = |source| CopyError::Write { src: src.clone(), dest: copy.dest.clone(), source };
    let mut entries = tree::copy_entries_with(project_dir, &copy.src, rules).map_err(|source| CopyError::Source {
        src: src.clone(),
        dest: copy.dest.clone(),
        source: Box::new(source),
    })?;
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    let src_is_dir = std::fs::symlink_metadata(&entries[0].source).is_ok_and(|m| m.is_dir());
    let dest = destination(copy, src_is_dir);
    let mut writer = LayerWriter::new(out, compression, MtimePolicy::Clamp(epoch));
    // The destination's parents, as Docker makes them: the image's own as
    // they are, missing ones 0755 root.
    let mut parent = PathBuf::new();
    let parents: Vec<Component> = dest.components().collect();
    for c in &parents[..parents.len().saturating_sub(1)] {
        parent.push(c);
        match crate::build::dockerfile::merged::find(lowers, &parent, false) {
            Ok(Some(f)) if f.meta.is_dir() => writer.add_as(&parent, &f.path, &Overrides::default()),
            _ => writer.add_dir(&parent, 0o755),
        }
        .map_err(werr)?;
    }
    let overrides = Overrides { owner: Some(owner.unwrap_or((0, 0))), mode: copy.mode };
    for e in &entries {
        let at = if e.rel.as_os_str().is_empty() { dest.clone() } else { dest.join(&e.rel) };
        if at.as_os_str().is_empty() {
            continue; // a directory copied to `/`: the root has no entry of its own
        }
        if e.rel.as_os_str().is_empty() && src_is_dir {
            // The directory the contents go into, as BuildKit makes it: the
            // image's own as it is, else 0755 (`mode` is for what is copied).
            match crate::build::dockerfile::merged::find(lowers, &at, false) {
                Ok(Some(f)) if f.meta.is_dir() => writer.add_as(&at, &f.path, &Overrides::default()),
                _ => writer.add_as(&at, &e.source, &Overrides { mode: Some(0o755), ..overrides }),
            }
            .map_err(werr)?;
            continue;
        }
        writer.add_as(&at, &e.source, &overrides).map_err(werr)?;
    }
    writer.finish().map_err(werr)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn entries(copy: &Copy, project: &Path) -> Vec<(String, u32, u64)> {
        let (bytes, _) = write_layer(project, copy, &[], None, Vec::new(), 0, Compression::Gzip).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        tar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (String::from_utf8_lossy(&e.path_bytes()).into_owned(), h.mode().unwrap(), h.uid().unwrap())
            })
            .collect()
    }

    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app/lib")).unwrap();
        std::fs::write(dir.path().join("app/main.py"), "print()").unwrap();
        std::fs::write(dir.path().join("app/lib/util.py"), "x = 1").unwrap();
        std::fs::write(dir.path().join("app/secret.env"), "k=v").unwrap();
        std::fs::write(dir.path().join(".berthignore"), "*.env\n").unwrap();
        dir
    }

    fn copy(src: &str, dest: &str, mode: Option<u32>) -> Copy {
        Copy { src: src.into(), dest: dest.into(), mode, owner: None }
    }

    #[test]
    fn a_directory_lands_inside_dest_with_parents_and_without_ignored_files() {
        let p = project();
        let got: Vec<String> = entries(&copy("app", "/srv/app", None), p.path()).into_iter().map(|e| e.0).collect();
        assert_eq!(got, ["srv/", "srv/app/", "srv/app/lib/", "srv/app/lib/util.py", "srv/app/main.py"]);
    }

    #[test]
    fn a_file_becomes_dest_or_goes_into_a_dest_dir() {
        let p = project();
        let names = |c: Copy| entries(&c, p.path()).into_iter().map(|e| e.0).collect::<Vec<_>>();
        assert_eq!(names(copy("app/main.py", "/srv/run.py", None)), ["srv/", "srv/run.py"]);
        assert_eq!(names(copy("app/main.py", "/srv/", None)), ["srv/", "srv/main.py"]);
    }

    #[test]
    fn mode_and_owner_apply_and_the_layer_is_reproducible() {
        let p = project();
        for (name, mode, uid) in entries(&copy("app", "/srv", Some(0o700)), p.path()) {
            assert_eq!(uid, 0, "{name}");
            // The directory the contents go into is made 0755, as BuildKit makes it.
            let want = if name == "srv/" { 0o755 } else { 0o700 };
            assert_eq!(mode & 0o7777, want, "{name}");
        }
        let a =
            write_layer(p.path(), &copy("app", "/srv", None), &[], None, Vec::new(), 0, Compression::Gzip).unwrap().1;
        let other = project();
        let b = write_layer(other.path(), &copy("app", "/srv", None), &[], None, Vec::new(), 0, Compression::Gzip)
            .unwrap()
            .1;
        assert_eq!(a.diff_id, b.diff_id, "same files, other directory, other mtimes");
        let mut text = String::new();
        let (bytes, _) = write_layer(
            p.path(),
            &copy("app/main.py", "/x", None),
            &[],
            Some((1000, 1000)),
            Vec::new(),
            0,
            Compression::Gzip,
        )
        .unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        for e in tar.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path_bytes().as_ref() == b"x" {
                assert_eq!(e.header().uid().unwrap(), 1000);
                e.read_to_string(&mut text).unwrap();
            }
        }
        assert_eq!(text, "print()");
    }

    #[test]
    fn parents_the_image_has_keep_their_mode() {
        let p = project();
        let lower = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(lower.path().join("home/user")).unwrap();
        std::fs::set_permissions(lower.path().join("home/user"), std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let lowers = [lower.path().to_path_buf()];
        let c = copy("app/main.py", "/home/user/app/", None);
        let (bytes, _) = write_layer(p.path(), &c, &lowers, None, Vec::new(), 0, Compression::Gzip).unwrap();
        let modes = layer_modes(&bytes);
        assert!(modes.contains(&("home/user/".to_owned(), 0o700)), "the image's own: {modes:?}");
        assert!(modes.contains(&("home/user/app/".to_owned(), 0o755)), "a missing one: {modes:?}");
        // A directory's contents into the image's own directory: it stays as it is.
        let c = copy("app", "/home/user", Some(0o640));
        let (bytes, _) = write_layer(p.path(), &c, &lowers, None, Vec::new(), 0, Compression::Gzip).unwrap();
        let modes = layer_modes(&bytes);
        assert!(modes.contains(&("home/user/".to_owned(), 0o700)), "the image's own: {modes:?}");
        assert!(modes.contains(&("home/user/main.py".to_owned(), 0o640)), "what is copied: {modes:?}");
    }

    /// Each entry's path and permission bits in a gzipped layer.
    fn layer_modes(bytes: &[u8]) -> Vec<(String, u32)> {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        tar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (String::from_utf8_lossy(&e.path_bytes()).into_owned(), e.header().mode().unwrap() & 0o7777)
            })
            .collect()
    }
}
