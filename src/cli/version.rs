//! `berth version`.

use std::process::ExitCode;

/// Show berth's version and the formats it speaks.
#[derive(clap::Args)]
#[command(after_help = "Example: berth version --json")]
pub struct Args {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn run(_ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let version = env!("CARGO_PKG_VERSION");
    let oci = "1.1";
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "version": version, "oci_image_spec": oci, "os": std::env::consts::OS, "arch": std::env::consts::ARCH })
        );
    } else {
        println!("berth {version}\nOCI image spec {oci}\nplatform {}/{}", std::env::consts::OS, std::env::consts::ARCH);
    }
    Ok(ExitCode::SUCCESS)
}
