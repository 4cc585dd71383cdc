//! `berth pull`, `push`, `login`, `logout` and `search`: the registry verbs.
//!
//! Registry settings come from the environment (see
//! `berth::registry::Settings::from_env`): `BERTH_INSECURE_REGISTRIES`
//! lists registries reachable over plain HTTP (loopback ones always are),
//! and `registries.toml` in berth's config directory may list them too,
//! with extra CA files; `--ca-cert FILE` adds a CA for one command.

use std::io::{BufRead, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use berth::manifest::values::ByteSize;
use berth::oci::ImageRef;
use berth::registry::{Client, Credentials, Platform, PullOptions, Settings};
use berth::store::Store;

use super::transfer::TransferView;

/// Options every registry verb takes.
#[derive(clap::Args)]
pub struct TlsArgs {
    /// Trust this certificate authority (a PEM file) too, for a registry
    /// with a private CA (repeatable)
    #[arg(long = "ca-cert", value_name = "FILE")]
    ca_certs: Vec<PathBuf>,
}

impl TlsArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut settings = Settings::from_env()?;
        settings.ca_certs.extend(self.ca_certs.iter().cloned());
        Ok(settings)
    }

    fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(self.settings()?)?)
    }
}

/// Fetch an image from a registry into the store and tag it. Registries
/// other than loopback ones are reached over HTTPS unless listed in
/// BERTH_INSECURE_REGISTRIES.
#[derive(clap::Args)]
#[command(after_help = "Example: berth pull 127.0.0.1:5000/team/base:1")]
pub struct PullArgs {
    /// The image: [REGISTRY/]NAME[:TAG][@sha256:DIGEST] (Docker Hub when no registry is named)
    reference: String,
    /// The platform to take from a multi-platform image [default: this machine's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Show no progress; print only the manifest digest
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    tls: TlsArgs,
}

pub fn pull(ctx: &super::Context, args: PullArgs) -> anyhow::Result<ExitCode> {
    let reference: ImageRef = args.reference.parse()?;
    let platform = match &args.platform {
        Some(p) => p.parse::<Platform>()?,
        None => Platform::host(),
    };
    let client = args.tls.client()?;
    let store = Store::open(&ctx.store_root()?)?;
    let _exclusive = store.lock_exclusive()?;
    let view = TransferView::new("downloading", std::io::stderr().is_terminal(), args.quiet);
    let options = PullOptions { platform, tag: true };
    let pulled = client.pull(&store, &reference, &options, &|e| view.event(e));
    view.finish();
    let pulled = pulled.with_context(|| format!("cannot pull {}", args.reference))?;
    if !args.quiet {
        let name = pulled.tag.clone().unwrap_or_else(|| reference.to_string());
        eprintln!(
            "pulled {name}: {} fetched ({}), {} already in the store",
            blobs(pulled.fetched),
            ByteSize(pulled.fetched_bytes),
            pulled.present
        );
    }
    println!("{}", pulled.digest);
    Ok(ExitCode::SUCCESS)
}

/// Send an image to a registry: blobs the registry has are skipped, blobs
/// in another of its repositories are mounted, then the manifest is put.
#[derive(clap::Args)]
#[command(after_help = "Example: berth push shop/api:1.0 127.0.0.1:5000/shop/api:1.0")]
pub struct PushArgs {
    /// The image in the store: a name or id
    image: String,
    /// Where to push it, [REGISTRY/]NAME[:TAG] [default: the image's name]
    reference: Option<String>,
    /// Upload blobs in chunks of this size (such as 16MiB) rather than in one request
    #[arg(long, value_name = "SIZE")]
    chunk_size: Option<ByteSize>,
    /// Show no progress; print only the manifest digest
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    tls: TlsArgs,
}

pub fn push(ctx: &super::Context, args: PushArgs) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    let image = {
        let _shared = store.lock_shared()?;
        store.resolve_image(&args.image)?
    };
    let target_text = args.reference.as_deref().unwrap_or(&args.image);
    let target: ImageRef = target_text.parse().with_context(|| {
        format!("{target_text:?} does not name a registry repository; give the target, as in berth push IMAGE 127.0.0.1:5000/team/app:1")
    })?;
    let mut settings = args.tls.settings()?;
    settings.chunk_size = args.chunk_size.map(|s| s.0);
    let client = Client::new(settings)?;
    let _shared = store.lock_shared()?;
    let view = TransferView::new("uploading", std::io::stderr().is_terminal(), args.quiet);
    let pushed = client.push(&store, &image, &target, &|e| view.event(e));
    view.finish();
    let pushed = pushed.with_context(|| format!("cannot push {} to {target}", args.image))?;
    if !args.quiet {
        eprintln!(
            "pushed {target}: {} uploaded ({}), {} mounted, {} already there",
            blobs(pushed.uploaded),
            ByteSize(pushed.uploaded_bytes),
            pushed.mounted,
            pushed.present
        );
    }
    println!("{}", pushed.digest);
    Ok(ExitCode::SUCCESS)
}

/// "1 blob", "2 blobs".
fn blobs(n: usize) -> String {
    format!("{n} blob{}", if n == 1 { "" } else { "s" })
}

/// Log in to a registry: checks the user name and password against it and
/// saves them (mode 0600) in $XDG_CONFIG_HOME/berth/auth.json. The password
/// is read from standard input with --password-stdin, else asked for on the
/// terminal; it is never printed.
#[derive(clap::Args)]
#[command(after_help = "Example: berth login registry.example.com:5000 -u ci --password-stdin < password.txt")]
pub struct LoginArgs {
    /// The registry, HOST[:PORT] [default: Docker Hub]
    registry: Option<String>,
    /// The user name
    #[arg(short, long)]
    username: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    tls: TlsArgs,
}

pub fn login(_ctx: &super::Context, args: LoginArgs) -> anyhow::Result<ExitCode> {
    let registry = berth::registry::registry_name(args.registry.as_deref())?;
    let interactive = std::io::stdin().is_terminal();
    let username = match args.username {
        Some(u) => u,
        None if interactive && !args.password_stdin => prompt("Username: ", false)?,
        None => bail!("give the user name with -u USER"),
    };
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else if interactive {
        prompt("Password: ", true)?
    } else {
        bail!("standard input is not a terminal: pass the password with --password-stdin");
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    let client = args.tls.client()?;
    client.login(&registry, &Credentials { username, password })?;
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal; `secret` turns echo off.
fn prompt(question: &str, secret: bool) -> anyhow::Result<String> {
    eprint!("{question}");
    std::io::stderr().flush()?;
    let stdin = std::io::stdin();
    let guard = if secret { Some(berth::sys::tty::NoEcho::enter(stdin.as_fd())?) } else { None };
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    drop(guard);
    if secret {
        eprintln!();
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Log out of a registry: forget the credentials berth saved for it
/// (Docker's own config.json is left alone).
#[derive(clap::Args)]
#[command(after_help = "Example: berth logout registry.example.com:5000")]
pub struct LogoutArgs {
    /// The registry, HOST[:PORT] [default: Docker Hub]
    registry: Option<String>,
}

pub fn logout(_ctx: &super::Context, args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let registry = berth::registry::registry_name(args.registry.as_deref())?;
    let client = Client::new(Settings::from_env()?)?;
    if client.logout(&registry)? {
        println!("Removed login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Search a registry for repositories whose name contains TERM: Docker
/// Hub's search when no registry is named, else the registry's catalog.
#[derive(clap::Args)]
#[command(after_help = "Example: berth search 127.0.0.1:5000/team")]
pub struct SearchArgs {
    /// [REGISTRY/]TERM
    term: String,
    /// Show at most N results
    #[arg(long, default_value_t = 25, value_name = "N")]
    limit: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    tls: TlsArgs,
}

pub fn search(_ctx: &super::Context, args: SearchArgs) -> anyhow::Result<ExitCode> {
    let (registry, term) = match args.term.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (berth::registry::registry_name(Some(first))?, rest)
        }
        _ => (berth::registry::registry_name(None)?, args.term.as_str()),
    };
    let client = args.tls.client()?;
    let found = client.search(&registry, term, args.limit)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(ExitCode::SUCCESS);
    }
    let hub = found.iter().any(|f| f.description.is_some());
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|f| {
            let mut row = vec![f.name.clone()];
            if hub {
                row.push(super::output::shorten(f.description.as_deref().unwrap_or(""), 50));
                row.push(f.stars.unwrap_or(0).to_string());
                row.push(if f.official == Some(true) { "[OK]".into() } else { String::new() });
            }
            row
        })
        .collect();
    let headers: &[&str] = if hub { &["NAME", "DESCRIPTION", "STARS", "OFFICIAL"] } else { &["NAME"] };
    println!("{}", super::output::table(headers, &rows));
    Ok(ExitCode::SUCCESS)
}
