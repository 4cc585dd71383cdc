//! Debian's `linux-image-amd64` kernel for the test machine, fetched with
//! apt and unpacked into the target directory, never installed: the host's
//! own `/boot` and `/lib/modules` are untouched.
//!
//! `apt-cache depends linux-image-amd64` names the versioned package
//! (`linux-image-6.1.0-NN-amd64`); `apt-get download` fetches it;
//! `dpkg-deb --fsys-tarfile | tar -x` unpacks the kernel image and the
//! module directories the machine needs into `CACHE/PACKAGE/` (through a
//! temporary directory renamed into place, so a half-unpacked kernel is
//! never used). [`Kernel::modules`] orders the wanted modules and their
//! dependencies, read from each module's `depends=` field (the package
//! ships no `modules.dep`: depmod writes it at install time).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::image::succeeded;

/// The meta-package that follows Debian's current kernel.
const META: &str = "linux-image-amd64";

/// What the machine loads: virtio PCI for its devices, 9p for the shared
/// directories, overlay for containers' roots.
pub const WANTED: [&str; 4] = ["virtio_pci", "9pnet_virtio", "9p", "overlay"];

/// The module directories unpacked from the package.
const MODULE_DIRS: [&str; 3] = ["kernel/drivers/virtio", "kernel/fs", "kernel/net/9p"];

/// An unpacked kernel package.
pub struct Kernel {
    pub package: String,
    pub vmlinuz: PathBuf,
    root: PathBuf,
}

/// The kernel of `linux-image-amd64`, unpacked below `cache` (fetched on
/// first use).
pub fn debian_kernel(cache: &Path) -> Kernel {
    let package = match versioned_package() {
        Some(p) => p,
        None => {
            apt_update();
            versioned_package().unwrap_or_else(|| panic!("apt-cache depends {META} names no linux-image package"))
        }
    };
    let root = cache.join(&package);
    if !root.join("complete").exists() {
        unpack(&package, cache, &root);
    }
    let boot = root.join("boot");
    let vmlinuz = fs::read_dir(&boot)
        .unwrap_or_else(|e| panic!("{}: {e}", boot.display()))
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
        .unwrap_or_else(|| panic!("no vmlinuz-* in {}", boot.display()));
    Kernel { package, vmlinuz, root }
}

fn versioned_package() -> Option<String> {
    let out = Command::new("apt-cache").args(["depends", META]).output().expect("run apt-cache");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| {
        let name = l.trim().strip_prefix("Depends: ")?;
        name.starts_with("linux-image-").then(|| name.to_owned())
    })
}

fn apt_update() {
    let update = Command::new("apt-get")
        .args(["-o", "DPkg::Lock::Timeout=300", "update", "-q"])
        .output()
        .expect("run apt-get update");
    succeeded("apt-get update", &update);
}

/// Downloads `package` and unpacks what the machine needs into `root`.
fn unpack(package: &str, cache: &Path, root: &Path) {
    let partial = cache.join(format!("{package}.partial.{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).unwrap_or_else(|e| panic!("create {}: {e}", partial.display()));
    let download = || Command::new("apt-get").args(["download", "-q", package]).current_dir(&partial).output();
    let mut out = download().expect("run apt-get download");
    if !out.status.success() {
        // The lists may name a version the archive no longer has.
        apt_update();
        out = download().expect("run apt-get download");
    }
    succeeded(&format!("apt-get download {package}"), &out);
    let deb = fs::read_dir(&partial)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .unwrap_or_else(|| panic!("apt-get download {package} left no .deb in {}", partial.display()));

    let mut dpkg =
        Command::new("dpkg-deb").arg("--fsys-tarfile").arg(&deb).stdout(Stdio::piped()).spawn().expect("run dpkg-deb");
    let mut tar = Command::new("tar");
    tar.args(["-x", "--wildcards", "-C"]).arg(&partial).arg("./boot/vmlinuz-*");
    for dir in MODULE_DIRS {
        tar.arg(format!("./lib/modules/*/{dir}"));
    }
    let tar = tar.stdin(dpkg.stdout.take().unwrap()).output().expect("run tar");
    let dpkg = dpkg.wait().expect("wait for dpkg-deb");
    assert!(dpkg.success(), "dpkg-deb --fsys-tarfile {} failed: {dpkg}", deb.display());
    succeeded(&format!("tar -x of {}", deb.display()), &tar);
    fs::remove_file(&deb).unwrap();
    fs::write(partial.join("complete"), package).unwrap();
    if let Err(e) = fs::rename(&partial, root) {
        // Another run unpacked it meanwhile: use that one.
        let _ = fs::remove_dir_all(&partial);
        assert!(root.join("complete").exists(), "rename {} to {}: {e}", partial.display(), root.display());
    }
}

impl Kernel {
    /// The `.ko` files of [`WANTED`] and everything they depend on, each
    /// after its dependencies, with their module names.
    pub fn modules(&self) -> Vec<(String, PathBuf)> {
        let mut files = HashMap::new();
        let mut stack = vec![self.root.join("lib/modules")];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Some(stem) = path.file_name().and_then(|n| n.to_str()?.strip_suffix(".ko")) {
                    files.insert(stem.replace('-', "_"), path);
                }
            }
        }
        let mut order = Vec::new();
        for name in WANTED {
            visit(name, &files, &mut order, &mut Vec::new());
        }
        order
    }
}

fn visit(name: &str, files: &HashMap<String, PathBuf>, order: &mut Vec<(String, PathBuf)>, path: &mut Vec<String>) {
    if order.iter().any(|(n, _)| n == name) {
        return;
    }
    assert!(!path.iter().any(|n| n == name), "module dependency cycle: {path:?} -> {name}");
    let file = files.get(name).unwrap_or_else(|| panic!("module {name} (needed by {path:?}) is not in the package"));
    path.push(name.to_owned());
    for dep in depends(file) {
        visit(&dep, files, order, path);
    }
    path.pop();
    order.push((name.to_owned(), file.clone()));
}

/// The `depends=a,b` field of a module's `.modinfo` section.
fn depends(file: &Path) -> Vec<String> {
    let bytes = fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let key = b"\0depends=";
    let Some(at) = bytes.windows(key.len()).position(|w| w == key) else {
        return Vec::new();
    };
    let rest = &bytes[at + key.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end]).split(',').filter(|d| !d.is_empty()).map(|d| d.replace('-', "_")).collect()
}
