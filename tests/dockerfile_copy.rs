//! Every COPY and ADD form end to end: `berth build -t` on the busybox test
//! image, then the image run and its files, modes and owners checked —
//! wildcards, `COPY --from` an image or a stage index, symbolic and octal
//! `--chmod`, `--chown` by name, `--link` (and its parent-free cache key),
//! `--parents`, `--exclude`, ADD of a URL from a loopback server the test
//! starts, with and without `--checksum`; and where buildah 1.28 builds the
//! same forms, the filesystem compared with `podman build`'s.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use support::Berth;

/// The fixture context for wildcards, `--from` and `--chown`/`--chmod`,
/// copied so a test may add to it.
fn fixture_context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    support::copy_tree(&support::repo().join("fixtures/dockerfiles/copy-wildcards"), dir.path());
    dir
}

fn build(berth: &Berth, ctx: &Path, tag: &str) -> support::Run {
    berth.run(&["build", "-t", tag, ctx.to_str().unwrap()])
}

fn sh(berth: &Berth, image: &str, script: &str) -> String {
    berth.run(&["run", "--rm", "--user", "0", "--entrypoint", "sh", image, "-c", script]).ok().to_owned()
}

#[test]
fn wildcards_from_an_image_or_index_chown_by_name_and_chmod() {
    let berth = Berth::with_busybox();
    let ctx = fixture_context();
    let p = ctx.path();
    std::fs::set_permissions(p.join("tools/run.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o664)).unwrap();
    std::fs::write(
        p.join("Dockerfile"),
        std::fs::read_to_string(p.join("Dockerfile")).unwrap()
            + "COPY nomatch* /none/\nCOPY --chmod=u+x,g-w tools/run.sh /sym/run.sh\nCOPY --chmod=go=u-w --from=made /made /symdir/\n",
    )
    .unwrap();
    build(&berth, p, "copy:1").ok();
    let seen = sh(
        &berth,
        "copy:1",
        "cd /; for d in app etc/confs from-image from-index ini; do echo $d:; ls $d; done; ls -d none 2>&1; \
         stat -c '%n %a %u %g' owned.py usr/local/bin/run.sh added.py sym/run.sh symdir symdir/one.txt",
    );
    assert_eq!(
        seen,
        "app:\na.py\nb.py\nlink.py\netc/confs:\nalias.ini\nx.ini\ny.ini\nfrom-image:\nbusybox\nfrom-index:\none.txt\ntwo.txt\nini:\nalias.ini\nx.ini\ny.ini\n\
         ls: none: No such file or directory\n\
         owned.py 644 65534 65534\nusr/local/bin/run.sh 750 0 0\nadded.py 640 0 0\nsym/run.sh 744 0 0\nsymdir 755 0 0\nsymdir/one.txt 644 0 0\n",
        "matches of every source, the ignored file left out; a wildcard that matches nothing copies nothing (as BuildKit)"
    );
    // A source that is a symlink is followed; one inside a copied directory stays a link.
    let links = sh(
        &berth,
        "copy:1",
        "cd /; for f in followed.py app/link.py ini/alias.ini etc/confs/alias.ini; do [ -L $f ] && echo $f link || echo $f $(cat $f); done",
    );
    assert_eq!(
        links,
        "followed.py print(\"a\")\napp/link.py print(\"a\")\nini/alias.ini x=1\netc/confs/alias.ini link\n"
    );
    // The busybox binary copied from the image is the image's own.
    assert_eq!(sh(&berth, "copy:1", "cmp /bin/busybox /from-image/busybox && echo same"), "same\n");

    // A rebuild is all cached; a new file a wildcard matches rebuilds that step.
    let again = build(&berth, p, "copy:1");
    assert!(again.stderr.contains("nothing to build"), "{}", again.stderr);
    std::fs::write(p.join("c.py"), "print('c')\n").unwrap();
    let more = build(&berth, p, "copy:1");
    more.ok();
    let line = |needle: &str| more.stderr.lines().find(|l| l.contains(needle)).unwrap_or_default().to_owned();
    assert!(line("mkdir -p /made").ends_with(": cached"), "{}", more.stderr);
    assert!(line("COPY *.py -> /app/").ends_with(": building"), "{}", more.stderr);
    assert_eq!(sh(&berth, "copy:1", "ls /app"), "a.py\nb.py\nc.py\nlink.py\n");
}

#[test]
fn several_matches_need_a_directory_destination_and_bad_forms_name_their_line() {
    let berth = Berth::with_busybox();
    let ctx = fixture_context();
    let p = ctx.path();
    std::fs::write(p.join("Dockerfile"), "FROM busybox:latest\nCOPY *.py /single\n").unwrap();
    let err = build(&berth, p, "bad:1").fails_with(1).to_owned();
    assert!(err.contains("Dockerfile:2:1: COPY /single: When using COPY with more than one source file"), "{err}");
    assert!(err.contains("write /single/"), "{err}");

    // One match into an existing directory is fine; into a new path it is the file.
    std::fs::write(p.join("Dockerfile"), "FROM busybox:latest\nCOPY a*.py /etc\nCOPY b*.py /b-file\n").unwrap();
    build(&berth, p, "one:1").ok();
    assert_eq!(sh(&berth, "one:1", "cat /etc/a.py /b-file"), "print(\"a\")\nprint(\"b\")\n");

    for (file, want) in [
        ("FROM busybox:latest\nCOPY --from=7 /x /y\n", "Dockerfile:2:1: COPY --from=7: invalid stage index 7"),
        ("FROM busybox:latest\nCOPY --chmod=u+q a.py /a\n", "Dockerfile:2:1: --chmod: invalid chmod parameter: 'u+q'"),
        ("FROM busybox:latest\nCOPY http://127.0.0.1:1/x /x\n", "source can't be a URL for COPY"),
        (
            "FROM busybox:latest\nADD https://github.com/org/repo.git /src\n",
            "Dockerfile:2:1: ADD of a git repository (https://github.com/org/repo.git) is not supported by berth yet",
        ),
        ("FROM busybox:latest\nCOPY missing/*.py /x/\n", "COPY missing/*.py: missing does not exist"),
    ] {
        std::fs::write(p.join("Dockerfile"), file).unwrap();
        let err = build(&berth, p, "bad:1").fails_with(1).to_owned();
        assert!(err.contains(want), "{file}\n{err}");
    }
}

#[test]
fn link_layers_do_not_depend_on_their_parent_and_parents_and_exclude_keep_paths() {
    let berth = Berth::with_busybox();
    let ctx = fixture_context();
    let p = ctx.path();
    std::fs::write(
        p.join("Dockerfile"),
        "FROM busybox:latest AS made\nRUN mkdir -m 700 -p /made/deep && echo 1 > /made/deep/one.txt\n\
         FROM busybox:latest\nRUN echo one > /one\nCOPY --link tools/run.sh /linked/\n\
         COPY --parents src/*/conf/*.ini /p/\nCOPY --parents ./src/./x/conf /q/\n\
         COPY --exclude=b.py --exclude=src *.py src /ex/\nCOPY --parents --from=made /made/*/*.txt /pp/\n",
    )
    .unwrap();
    build(&berth, p, "link:1").ok();
    let seen = sh(&berth, "link:1", "cd /; stat -c '%n %a' pp/made pp/made/deep; find linked p q ex | sort");
    assert_eq!(
        seen,
        "pp/made 755\npp/made/deep 700\nex\nex/a.py\nex/link.py\nex/x\nex/x/conf\nex/x/conf/alias.ini\nex/x/conf/x.ini\n\
         ex/y\nex/y/conf\nex/y/conf/y.ini\nlinked\nlinked/run.sh\n\
         p\np/src\np/src/x\np/src/x/conf\np/src/x/conf/alias.ini\np/src/x/conf/x.ini\np/src/y\np/src/y/conf\np/src/y/conf/y.ini\n\
         q\nq/x\nq/x/conf\nq/x/conf/alias.ini\nq/x/conf/x.ini\n"
    );

    // The same --link COPY over another parent is the same layer: cached.
    std::fs::write(
        p.join("Dockerfile"),
        "FROM busybox:latest\nRUN echo two > /two\nCOPY --link tools/run.sh /linked/\n",
    )
    .unwrap();
    let out = build(&berth, p, "link:2");
    out.ok();
    let line = out.stderr.lines().find(|l| l.contains("COPY tools/run.sh -> /linked/")).unwrap_or_default();
    assert!(line.ends_with(": cached"), "a --link layer is keyed without its parent:\n{}", out.stderr);
    assert_eq!(sh(&berth, "link:2", "cat /two; ls /linked"), "two\nrun.sh\n");
}

/// A loopback HTTP server answering every GET with `body` (and a
/// `Last-Modified`); its base URL and how many requests it answered. The
/// thread ends with the test process.
fn serve(body: &'static [u8]) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).and_then(|_| conn.write_all(body));
        }
    });
    (format!("http://{addr}"), served)
}

#[test]
fn add_fetches_a_url_verifies_its_checksum_and_never_unpacks_it() {
    let berth = Berth::with_busybox();
    let (base, served) = serve(b"fetched over http\n");
    let ctx = tempfile::tempdir().unwrap();
    let p = ctx.path();
    // sha256 of "fetched over http\n".
    let sum = {
        use sha2::Digest;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(b"fetched over http\n")))
    };
    std::fs::write(
        p.join("Dockerfile"),
        format!(
            "FROM busybox:latest\nADD {base}/files/data.txt /dl/\nADD --checksum={sum} {base}/sum/data.txt /sum.txt\n\
             ADD --chmod=644 {base}/other.tar.gz /opt/\n"
        ),
    )
    .unwrap();
    build(&berth, p, "url:1").ok();
    let seen = sh(&berth, "url:1", "cat /dl/data.txt /sum.txt; stat -c '%n %a %u' /dl/data.txt /opt/other.tar.gz");
    assert_eq!(
        seen, "fetched over http\nfetched over http\n/dl/data.txt 600 0\n/opt/other.tar.gz 644 0\n",
        "mode 0600 unless --chmod; the name from the URL; a .tar.gz URL is a file, never unpacked; mtimes clamped to SOURCE_DATE_EPOCH"
    );

    // A rebuild fetches the URLs without --checksum again (their key is the
    // content) and the one with --checksum not at all (its key is the sum).
    assert_eq!(served.load(Ordering::SeqCst), 3);
    let again = build(&berth, p, "url:1");
    assert!(again.stderr.contains("nothing to build"), "{}", again.stderr);
    assert_eq!(served.load(Ordering::SeqCst), 5);

    let bad = format!("sha256:{}", "0".repeat(64));
    std::fs::write(p.join("Dockerfile"), format!("FROM busybox:latest\nADD --checksum={bad} {base}/x.txt /x.txt\n"))
        .unwrap();
    let err = build(&berth, p, "url:2").fails_with(1).to_owned();
    assert!(
        err.contains(&format!(
            "Dockerfile:2:1: ADD {base}/x.txt: checksum mismatch: --checksum expects {bad}, the content is {sum}"
        )),
        "{err}"
    );
    // Also when the same URL is fetched ahead for another ADD without --checksum.
    std::fs::write(
        p.join("Dockerfile"),
        format!("FROM busybox:latest\nADD {base}/x.txt /a.txt\nADD --checksum={bad} {base}/x.txt /b.txt\n"),
    )
    .unwrap();
    let err = build(&berth, p, "url:3").fails_with(1).to_owned();
    assert!(err.contains(&format!("Dockerfile:3:1: ADD {base}/x.txt: checksum mismatch")), "{err}");
    // sha512 checksums are verified too.
    let sum512 = {
        use sha2::Digest;
        format!("sha512:{}", hex::encode(sha2::Sha512::digest(b"fetched over http\n")))
    };
    std::fs::write(p.join("Dockerfile"), format!("FROM busybox:latest\nADD --checksum={sum512} {base}/y.txt /y.txt\n"))
        .unwrap();
    build(&berth, p, "url:4").ok();
    assert_eq!(sh(&berth, "url:4", "cat /y.txt"), "fetched over http\n");
}

/// Every path of `image`'s filesystem with type, mode, owner, size and
/// content digest or link target (no mtimes); the runtime's files left out.
fn listing(berth: &Berth, image: &str) -> Vec<String> {
    let script = r#"find / -xdev \( -path /proc -o -path /sys -o -path /dev \) -prune -o -print | sort | while read f; do
if [ -L "$f" ]; then echo "$f L $(stat -c '%a %u %g' "$f") $(readlink "$f")";
elif [ -d "$f" ]; then echo "$f D $(stat -c '%a %u %g' "$f")";
else echo "$f F $(stat -c '%a %u %g %s' "$f") $(md5sum < "$f")"; fi; done"#;
    let out = sh(berth, image, script);
    let runtime = ["/etc/hostname ", "/etc/hosts ", "/etc/resolv.conf ", "/run D "];
    out.lines().filter(|l| !runtime.iter().any(|r| l.starts_with(r))).map(str::to_owned).collect()
}

#[test]
fn the_fixture_builds_the_filesystem_podman_build_does() {
    let berth = Berth::with_busybox();
    let podman = support::podman::Podman::new();
    let ctx = fixture_context();
    let p = ctx.path();
    let base = tempfile::tempdir().unwrap();
    let base_tar = base.path().join("base.tar");
    berth.run(&["save", "-o", base_tar.to_str().unwrap(), "busybox:latest"]).ok();
    podman.ok(&["load", "-i", base_tar.to_str().unwrap()]);
    let ctx_arg = p.to_str().unwrap();
    podman.ok(&["build", "--pull=never", "--isolation", "chroot", "--format", "docker", "-t", "cw:1", ctx_arg]);
    let theirs = base.path().join("podman.tar");
    podman.ok(&["save", "-o", theirs.to_str().unwrap(), "localhost/cw:1"]);
    berth.run(&["load", "-i", theirs.to_str().unwrap()]).ok();
    build(&berth, p, "shop/cw:1").ok();
    let (ours, podmans) = (listing(&berth, "shop/cw:1"), listing(&berth, "localhost/cw:1"));
    assert!(ours.iter().any(|l| l.starts_with("/owned.py F 644 65534 65534")), "{ours:#?}");
    assert_eq!(ours, podmans);
    let history = |image: &str| {
        let inspect = berth.run(&["inspect", image]).json();
        let digest = inspect[0]["Manifest"]["config"]["digest"].as_str().unwrap().to_owned();
        let path = berth.store_root().join("oci/blobs/sha256").join(digest.trim_start_matches("sha256:"));
        let config: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        config["history"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(history("shop/cw:1"), history("localhost/cw:1"), "one history entry per instruction");
}
