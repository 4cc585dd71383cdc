//! `berth commit`, `berth snapshot` and `berth export` end to end: every
//! kind of change reaches the new image and nothing else does, the
//! container is thawed afterwards (also when the commit fails), `--change`
//! and zstd layers work, export → import keeps the tree, and a container
//! racing symlinks into its tree never gets a host file into an image.

mod support;

use std::path::{Path, PathBuf};

use support::{Berth, wait_until as wait_for};

/// Starts a detached busybox container `name` running `script`, which
/// must `touch /ready` when it has made its changes; waits for that.
fn start(berth: &Berth, name: &str, script: &str) -> String {
    let id = berth.detach(&["--name", name, "busybox", "sh", "-c", script]);
    wait_for("the container's changes", || berth.run(&["exec", name, "test", "-e", "/ready"]).code == 0);
    id
}

/// Whether the container's cgroup is frozen, read from the kernel (v1
/// freezer or v2 `cgroup.events`).
fn frozen(id: &str) -> bool {
    let v1 = PathBuf::from(format!("/sys/fs/cgroup/freezer/berth/{id}/freezer.state"));
    if let Ok(state) = std::fs::read_to_string(&v1) {
        return state.trim() != "THAWED";
    }
    let v2 = PathBuf::from(format!("/sys/fs/cgroup/berth/{id}/cgroup.events"));
    let events = std::fs::read_to_string(&v2).unwrap_or_else(|e| panic!("no freezer state for {id}: {e}"));
    events.lines().any(|l| l == "frozen 1")
}

/// The container is running, thawed and answers.
#[track_caller]
fn assert_alive(berth: &Berth, name: &str, id: &str) {
    assert!(!frozen(id), "container {name} is still frozen");
    assert_eq!(berth.run(&["exec", name, "echo", "alive"]).ok(), "alive\n");
}

/// `berth inspect IMAGE` as JSON.
fn inspect(berth: &Berth, image: &str) -> serde_json::Value {
    berth.run(&["inspect", image]).json()[0].clone()
}

/// The unpacked directory of the top layer of `image`.
fn top_layer_dir(berth: &Berth, image: &str) -> PathBuf {
    let info = inspect(berth, image);
    let diff_ids = info["Config"]["rootfs"]["diff_ids"].as_array().unwrap();
    let top = diff_ids.last().unwrap().as_str().unwrap();
    berth.store_root().join("layers").join(top.strip_prefix("sha256:").unwrap())
}

const CHANGES: &str = "
    mkdir -p /srv/app && echo hello > /srv/app/new.txt && ln /srv/app/new.txt /srv/app/hard
    echo extra >> /etc/group
    rm /bin/vi
    rm -rf /home/user
    rm -rf /root && mkdir -m 0750 /root && echo only > /root/only
    chmod 0750 /tmp
    ln -s /srv/app/new.txt /srv/link
    touch /ready
    exec sleep 300";

/// What the image made from `CHANGES` shows, one line per check.
const CHECK: &str = "
    cat /srv/app/new.txt; tail -n 1 /etc/group
    test -e /bin/vi && echo vi || echo no-vi
    test -e /home/user && echo home || echo no-home
    ls -A /root; stat -c '%a' /root /tmp
    readlink /srv/link; stat -c '%h' /srv/app/hard
    test -e /ready && echo ready";

const EXPECTED: &str = "hello\nextra\nno-vi\nno-home\nonly\n750\n750\n/srv/app/new.txt\n2\nready\n";

#[test]
fn commit_captures_every_kind_of_change_and_thaws_the_container() {
    let berth = Berth::with_busybox();
    let id = start(&berth, "c1", CHANGES);
    let out = berth.run(&["commit", "-m", "all kinds of change", "c1", "snap:1"]).ok().trim().to_owned();
    assert!(out.starts_with("sha256:") && out.len() == 71, "{out}");
    assert_alive(&berth, "c1", &id);

    assert_eq!(berth.run(&["run", "--rm", "snap:1", "sh", "-c", CHECK]).ok(), EXPECTED);
    let history = berth.run(&["history", "snap:1"]).ok().to_owned();
    assert!(history.contains("berth commit c1: all kinds of change"), "{history}");
    let info = inspect(&berth, "snap:1");
    let last = info["Config"]["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["comment"], "all kinds of change", "{last}");
    assert_eq!(info["Id"], out.as_str());

    // Only the changes are in the layer: not the mount points the runtime
    // made (/etc/hosts and friends), not what did not change (/bin).
    let layer = top_layer_dir(&berth, "snap:1");
    assert!(layer.join("srv/app/new.txt").is_file());
    for absent in ["etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/passwd", "bin/busybox", "ready"] {
        let present = layer.join(absent).symlink_metadata().is_ok();
        assert_eq!(present, absent == "ready", "{absent} in the layer: {present}");
    }
}

#[test]
fn a_stopped_container_commits_with_changes_to_its_config() {
    let berth = Berth::with_busybox();
    berth.run(&["run", "--name", "s1", "busybox", "sh", "-c", "echo data > /data.txt"]).ok();
    let args = ["commit", "-c", "ENV K=V", "-c", "CMD [\"cat\", \"/data.txt\"]", "-c", "WORKDIR /tmp", "s1", "img:2"];
    berth.run(&args).ok();
    assert_eq!(berth.run(&["run", "--rm", "img:2"]).ok(), "data\n");
    assert_eq!(berth.run(&["run", "--rm", "img:2", "sh", "-c", "echo $K; pwd"]).ok(), "V\n/tmp\n");
    let config = &inspect(&berth, "img:2")["Config"]["config"];
    assert_eq!(config["Cmd"], serde_json::json!(["cat", "/data.txt"]), "{config}");

    // Nothing changed: no new layer, an empty_layer history entry.
    berth.run(&["run", "--name", "s2", "img:2", "true"]).ok();
    berth.run(&["commit", "s2", "img:3"]).ok();
    let (two, three) = (inspect(&berth, "img:2"), inspect(&berth, "img:3"));
    assert_eq!(two["Manifest"]["layers"], three["Manifest"]["layers"]);
    let last = three["Config"]["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["empty_layer"], true, "{last}");
    assert_eq!(berth.run(&["run", "--rm", "img:3"]).ok(), "data\n");
}

#[test]
fn a_failed_commit_thaws_the_container_and_tags_nothing() {
    let berth = Berth::with_busybox();
    // An OCI layer cannot hold a name starting with .wh.: the commit fails
    // after the container was frozen and its files were being read.
    let id = start(&berth, "bad", "touch /tmp/.wh.oops /ready; exec sleep 300");
    let err = berth.run(&["commit", "bad", "never:1"]).fails_with(1).to_owned();
    assert!(err.contains(".wh.oops") && err.contains("container bad"), "{err}");
    assert_alive(&berth, "bad", &id);
    assert!(!berth.run(&["images"]).ok().contains("never"));

    // Checked before anything is frozen: a bad tag, a bad instruction.
    let err = berth.run(&["commit", "bad", "Bad Tag!"]).fails_with(1).to_owned();
    assert!(err.contains("invalid image name"), "{err}");
    let err = berth.run(&["commit", "-c", "FROM x", "bad", "x:1"]).fails_with(1).to_owned();
    assert!(err.contains("unknown instruction FROM"), "{err}");
    assert_alive(&berth, "bad", &id);
}

#[test]
fn zstd_layers_commit_and_run_also_after_unpacking_from_the_blob() {
    let berth = Berth::with_busybox();
    let id = start(&berth, "z", "seq 1 20000 > /numbers; touch /ready; exec sleep 300");
    berth.run(&["commit", "--compression", "zstd", "z", "zimg:1"]).ok();
    assert_alive(&berth, "z", &id);
    let layers = inspect(&berth, "zimg:1")["Manifest"]["layers"].clone();
    let top = layers.as_array().unwrap().last().unwrap().clone();
    assert_eq!(top["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd", "{top}");
    let blob = berth.store_root().join("oci/blobs/sha256").join(&top["digest"].as_str().unwrap()[7..]);
    assert_eq!(std::fs::read(&blob).unwrap()[..4], [0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");

    let check = ["run", "--rm", "zimg:1", "sh", "-c", "wc -l < /numbers; tail -n 1 /numbers"];
    assert_eq!(berth.run(&check).ok(), "20000\n20000\n");
    // Without its unpacked directory the layer is unpacked from the blob.
    std::fs::remove_dir_all(top_layer_dir(&berth, "zimg:1")).unwrap();
    assert_eq!(berth.run(&check).ok(), "20000\n20000\n");
}

/// Every path of the container's own tree (no mounts, not the root), with
/// type, mode, owner, size and link count (not for directories), symlink
/// target, and the md5 of every regular file.
const LISTING: &str = r#"
    paths=$(find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /etc/hosts -o -path /etc/hostname \
        -o -path /etc/resolv.conf -o -path /ready \) -prune -o ! -path / -print | sort)
    for p in $paths; do
        if [ -d "$p" ] && [ ! -L "$p" ]; then stat -c '%n %F %a %u %g' "$p"; else stat -c '%n %F %a %u %g %s %h %N' "$p"; fi
    done
    for p in $paths; do if [ -f "$p" ] && [ ! -L "$p" ]; then md5sum "$p"; fi; done"#;

#[test]
fn export_then_import_keeps_contents_modes_owners_symlinks_and_hardlinks() {
    let berth = Berth::with_busybox();
    let script = "
        mkdir -p /srv/data/sub && echo one > /srv/data/one && ln /srv/data/one /srv/data/one-again
        echo secret > /srv/data/sub/key && chmod 0600 /srv/data/sub/key && chown 1000:1000 /srv/data/sub/key
        cp /bin/busybox /srv/suid && chmod 4755 /srv/suid
        mkdir -m 1777 /srv/shared && mkfifo /srv/fifo && ln -s ../srv/data/one /srv/rel-link
        rm /bin/vi && rm -rf /home/user
        touch /ready; exec sleep 300";
    let id = start(&berth, "ex", script);
    let inside = berth.run(&["exec", "ex", "sh", "-c", LISTING]).ok().to_owned();
    assert!(inside.contains("/srv/data/one-again regular file 644 0 0 4 2"), "{inside}");

    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("ex.tar");
    berth.run(&["export", "-o", tar.to_str().unwrap(), "ex"]).ok();
    assert_alive(&berth, "ex", &id);
    let entries = std::fs::metadata(&tar).unwrap().len();
    assert!(entries > 0);
    assert!(std::fs::read_dir(dir.path()).unwrap().count() == 1, "no temp file is left beside the tar");

    berth.run(&["import", tar.to_str().unwrap(), "exported:1"]).ok();
    let outside = berth.run(&["run", "--rm", "exported:1", "sh", "-c", LISTING]).ok().to_owned();
    assert_eq!(outside, inside);

    // Standard output, and the same bytes.
    let piped = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["--root", berth.store_root().to_str().unwrap(), "export", "ex"])
        .output()
        .unwrap();
    assert!(piped.status.success(), "{}", String::from_utf8_lossy(&piped.stderr));
    assert!(piped.stdout == std::fs::read(&tar).unwrap(), "stdout and -o write the same tar");

    // And `berth import -` reads it from standard input.
    let mut import = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["--root", berth.store_root().to_str().unwrap(), "import", "-", "exported:2"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut import.stdin.take().unwrap(), &piped.stdout).unwrap();
    assert!(import.wait().unwrap().success());
    assert_eq!(berth.run(&["run", "--rm", "exported:2", "cat", "/srv/data/one-again"]).ok(), "one\n");
}

#[test]
fn snapshot_names_the_env_leaves_volumes_out_and_says_what_is_wrong() {
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    let manifest = r#"
project = "snapt"

[env.app]
image = "rootfs:busybox.tar"
volumes = ["data:/data"]
cmd = ["sh", "-c", "echo kept > /kept; echo volume > /data/in-volume; touch /ready; exec sleep 300"]
"#;
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    wait_for("the env's changes", || berth.run_in(dir.path(), &["exec", "app", "test", "-e", "/ready"]).code == 0);

    let snap = berth.run_in(dir.path(), &["snapshot", "app", "-m", "before the change"]);
    let tag = snap.ok().trim().to_owned();
    assert!(tag.starts_with("snapt/app:snapshot-") && tag.len() == "snapt/app:snapshot-20260101-120000".len(), "{tag}");
    let history = berth.run(&["history", &tag]).ok().to_owned();
    assert!(history.contains("berth snapshot snapt/app: before the change"), "{history}");
    let check = ["run", "--rm", &tag, "sh", "-c", "cat /kept; ls -A /data 2>/dev/null | wc -l"];
    assert_eq!(berth.run(&check).ok(), "kept\n0\n", "the volume's contents are not in the image");

    berth.run_in(dir.path(), &["snapshot", "app", "-t", "snapt/app:qa"]).ok();
    assert!(berth.run(&["images"]).ok().contains("qa"));
    let err = berth.run_in(dir.path(), &["snapshot", "nope"]).fails_with(1).to_owned();
    assert!(err.contains("declares no env \"nope\"") && err.contains("app"), "{err}");
    berth.run_in(dir.path(), &["down"]).ok();
}

/// A container that keeps swapping a directory of its own for a symlink to
/// the host's `/etc` (as the container sees it, `/etc`; from the host, the
/// host's) while it is committed without freezing: each commit either
/// fails saying why or holds only the container's files — never a host
/// file read through the link.
#[test]
fn a_symlink_race_in_the_container_never_reads_host_files() {
    let berth = Berth::with_busybox();
    let script = r#"
        mkdir -p /escape/d
        for f in os-release passwd group hostname debian_version $(seq 1 200); do echo container > /escape/d/$f; done
        touch /ready
        while true; do
            sleep 0.01
            mv /escape/d /escape/real; ln -s /etc /escape/d
            sleep 0.01
            rm /escape/d; mv /escape/real /escape/d
        done"#;
    let id = start(&berth, "race", script);
    let (mut ok, mut refused, mut links) = (0, 0, 0);
    for round in 0..12 {
        let tag = format!("race:{round}");
        let run = berth.run(&["commit", "--pause=false", "race", &tag]);
        if run.code != 0 {
            assert!(run.stderr.contains("cannot commit container race"), "{}", run.stderr);
            refused += 1;
            links += usize::from(run.stderr.contains("never follows links"));
            continue;
        }
        ok += 1;
        assert_only_container_files(&top_layer_dir(&berth, &tag).join("escape"));
    }
    // Frozen (the default), the container cannot race: every commit works.
    for round in 0..3 {
        let tag = format!("frozen:{round}");
        berth.run(&["commit", "race", &tag]).ok();
        assert_only_container_files(&top_layer_dir(&berth, &tag).join("escape"));
    }
    assert_alive(&berth, "race", &id);
    eprintln!("symlink race: {ok} commits made, {refused} refused ({links} at a symlink)");
}

/// Every regular file under `dir` says "container"; symlinks are links.
fn assert_only_container_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries {
        let path = entry.unwrap().path();
        let meta = path.symlink_metadata().unwrap();
        if meta.is_dir() {
            assert_only_container_files(&path);
        } else if meta.is_file() {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(text, "container\n", "{} holds a host file", path.display());
        }
    }
}
