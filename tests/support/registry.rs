//! A real registry on loopback for one test, and a berth user to talk to it.
//!
//! - [`Registry::start`]: Debian's `docker-registry` (the CNCF distribution
//!   registry, installed with apt when missing) with filesystem storage in
//!   a temp dir, listening on `127.0.0.1:<free port>`, optionally behind
//!   htpasswd Basic auth and TLS with a CA the test makes with openssl. It
//!   is killed (by its pid) when the value is dropped, also when the test
//!   fails.
//! - [`User`]: runs berth with its own config directories (so that no
//!   test reads or writes the real `~/.config/berth` or `~/.docker`), and
//!   optionally standard input.
//! - [`free_port`]: a loopback port nobody listens on, for "registry down".
//! - `token`: a Bearer token service (a thread on loopback) signing the
//!   JWTs the registry's `auth.token` checks, for [`Options::token`].
//!
//! Nothing here talks to any address but 127.0.0.1.

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "registry_token.rs"]
mod token;

use super::image::require_tool;
use super::{Berth, Run};

/// How to start a registry.
#[derive(Default, Clone)]
pub struct Options {
    /// htpasswd Basic auth with this user and password.
    pub user: Option<(String, String)>,
    /// Serve HTTPS with a certificate for 127.0.0.1 signed by a test CA.
    pub tls: bool,
    /// Bearer token auth: a token service on another loopback port signs
    /// tokens (ES256 JWTs) for `user`'s credentials (or anyone, if none).
    pub token: bool,
}

/// A running `docker-registry`; killed when dropped.
pub struct Registry {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
    _tokens: Option<token::TokenServer>,
}

impl Registry {
    /// A plain-HTTP registry with no auth.
    pub fn start() -> Registry {
        Registry::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Registry {
        let binary = require_tool("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().expect("registry temp dir");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if options.tls {
            make_certificates(dir.path());
            let d = dir.path().display();
            config.push_str(&format!("  tls:\n    certificate: {d}/server.pem\n    key: {d}/server.key\n"));
        }
        let tokens = options.token.then(|| token::TokenServer::start(dir.path(), options.user.clone()));
        if let Some(tokens) = &tokens {
            let d = dir.path().display();
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: berth-test\n    issuer: berth-test-issuer\n    rootcertbundle: {d}/token.pem\n",
                tokens.realm()
            ));
        } else if let Some((user, password)) = &options.user {
            require_tool("htpasswd", "apache2-utils");
            let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("run htpasswd");
            assert!(out.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
            fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
            let path = dir.path().join("htpasswd");
            config.push_str(&format!("auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n", path.display()));
        }
        fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut registry = Registry { dir, child, port, _tokens: tokens };
        registry.wait_until_listening();
        registry
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + super::PATIENCE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited ({status}):\n{}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "docker-registry did not listen on 127.0.0.1:{} within {:?}:\n{}",
            self.port,
            super::PATIENCE,
            self.log()
        );
    }

    /// `127.0.0.1:PORT`, as references name it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The test CA's certificate (PEM), for a TLS registry.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Where the registry keeps the blob `digest` (`sha256:…`).
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.dir.path().join("data/docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }

    /// What the registry logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A CA and a server certificate for 127.0.0.1 signed by it, in `dir`.
fn make_certificates(dir: &Path) {
    require_tool("openssl", "openssl");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
        assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    };
    let days = ["-days", "2"];
    openssl(
        &[
            &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"][..],
            &["-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=berth test CA"],
            &["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            &days,
        ]
        .concat(),
    );
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            &["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"][..],
            &["-out", "server.pem", "-extfile", "server.ext"],
            &days,
        ]
        .concat(),
    );
}

/// A berth user with their own config directories.
pub struct User {
    home: tempfile::TempDir,
}

impl User {
    pub fn new() -> User {
        User { home: tempfile::tempdir().expect("user temp dir") }
    }

    /// berth's config directory (`auth.json`, `registries.toml`).
    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join("config/berth")
    }

    /// Docker's config directory (`config.json`).
    pub fn docker_dir(&self) -> PathBuf {
        self.home.path().join("docker")
    }

    /// `berth --root STORE ARGS…` as this user, in `cwd`, with `stdin`.
    pub fn run_in(&self, berth: &Berth, cwd: &Path, args: &[&str], stdin: Option<&str>) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(berth.store_root())
            .args(args)
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("DOCKER_CONFIG", self.docker_dir())
            .env_remove("BERTH_INSECURE_REGISTRIES")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run berth");
        if let Some(text) = stdin {
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        Run::from(child.wait_with_output().expect("wait for berth"))
    }

    /// `berth --root STORE ARGS…` as this user.
    pub fn run(&self, berth: &Berth, args: &[&str]) -> Run {
        self.run_in(berth, &super::repo(), args, None)
    }
}
