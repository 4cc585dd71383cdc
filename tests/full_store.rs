//! A store on a filesystem too small for what is written into it: import
//! and load (both archive forms) fail saying the store's filesystem is
//! full, naming the store, never blaming the input; the store stays
//! consistent (`berth fsck`) and usable. The store lives on a small tmpfs
//! the test mounts and unmounts (also when it fails).

mod support;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::Berth;

/// The small filesystem's size, and how much the input unpacks to (zeros:
/// cheap to make, and tmpfs stores every page written).
const FS_MIB: u64 = 16;
const CONTENT: u64 = 24 << 20;

/// A tmpfs of [`FS_MIB`] MiB mounted on a temp dir; unmounted when dropped.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount() -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let size = format!("size={FS_MIB}m");
        nix::mount::mount(Some("tmpfs"), dir.path(), Some("tmpfs"), nix::mount::MsFlags::empty(), Some(size.as_str()))
            .unwrap_or_else(|e| panic!("mount a {FS_MIB} MiB tmpfs on {} (needs root): {e}", dir.path().display()));
        SmallFs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A flat filesystem tar of one file, `zeros.bin`, of [`CONTENT`] bytes.
fn write_zeros_tar(out: impl Write) -> io::Result<()> {
    let mut builder = tar::Builder::new(out);
    let mut header = tar::Header::new_gnu();
    header.set_size(CONTENT);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, "zeros.bin", io::repeat(0).take(CONTENT))?;
    builder.into_inner().map(drop)
}

/// `berth --root ROOT import - NAME`, the tar written to its standard input
/// as it reads (berth may stop reading early: a broken pipe is fine).
fn import_zeros(root: &Path, name: &str) -> support::Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(root)
        .args(["import", "-", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth import -");
    let _ = write_zeros_tar(child.stdin.take().unwrap());
    support::Run::from(child.wait_with_output().unwrap())
}

/// Asserts that `run` failed because the store at `store` is full, saying
/// so and blaming no input; and that the store is consistent and empty.
#[track_caller]
fn assert_store_full(berth: &Berth, what: &str, run: &support::Run) {
    let err = run.fails_with(1);
    let store = berth.store_root().display().to_string();
    assert!(err.contains("the store's filesystem is full") && err.contains(&store), "{what}: {err}");
    assert!(err.contains("berth gc"), "{what} says what would help: {err}");
    for blame in ["not a readable", "cannot read the archive", "expected a", "truncated", "corrupt"] {
        assert!(!err.contains(blame), "{what} blames the input ({blame:?}): {err}");
    }
    let fsck = berth.run(&["fsck"]);
    assert!(fsck.ok().starts_with("store is consistent"), "{what}: {}", fsck.stdout);
    assert_eq!(std::fs::read_dir(berth.store_root().join("tmp")).unwrap().count(), 0, "{what} left staging behind");
    assert_eq!(berth.run(&["images", "--json"]).json(), serde_json::json!([]), "{what} tagged nothing");
}

#[test]
fn a_full_store_is_named_as_full_and_stays_consistent() {
    // The archives, made in a store with room.
    let roomy = Berth::new();
    import_zeros(&roomy.store_root(), "zeros:1").ok();
    let dir = tempfile::tempdir().unwrap();
    let archive = |format: &str| -> PathBuf {
        let path = dir.path().join(format!("{format}.tar"));
        roomy.run(&["save", "--format", format, "-o", path.to_str().unwrap(), "zeros:1"]).ok();
        path
    };
    // A gzip layer: small blob, too big unpacked. Plain layer tars: too big
    // to keep as a blob at all.
    let (oci, docker) = (archive("oci-archive"), archive("docker-archive"));
    assert!(std::fs::metadata(&docker).unwrap().len() > FS_MIB << 20, "the docker archive's layer is a plain tar");

    let fs = SmallFs::mount();
    let berth = Berth::new_in(fs.path());
    assert_store_full(&berth, "import", &import_zeros(&berth.store_root(), "zeros:1"));
    assert_store_full(&berth, "load of an OCI archive", &berth.run(&["load", "-i", oci.to_str().unwrap()]));
    assert_store_full(&berth, "load of a docker archive", &berth.run(&["load", "-i", docker.to_str().unwrap()]));

    // Still a working store: what fits goes in.
    support::image::import_busybox(&berth.store_root());
    assert_eq!(berth.run(&["run", "--rm", "busybox", "echo", "fits"]).ok(), "fits\n");
    assert!(berth.run(&["fsck"]).ok().starts_with("store is consistent"));
}
