//! `berth inspect`: everything about a container, an image, or an image
//! archive (`berth inspect FILE.tar`, read without loading it), as JSON.

use std::process::ExitCode;

use berth::runtime::{control, state};
use serde_json::json;

/// Show details of a container, an image or an image archive, as JSON.
#[derive(clap::Args)]
#[command(after_help = "Example: berth inspect web\n         berth inspect ./images.tar")]
pub struct Args {
    /// Container or image names or ids, or archive files (FILE.tar or a path with a /)
    #[arg(required = true)]
    names: Vec<String>,
}

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut opened = None;
    let mut out = Vec::new();
    for name in &args.names {
        if super::archive::looks_like_archive(name) {
            out.push(super::archive::inspect(std::path::Path::new(name))?);
            continue;
        }
        let store = match &opened {
            Some(store) => store,
            None => opened.insert(super::containers::store(ctx)?),
        };
        if let Ok(c) = super::containers::find(store, name) {
            let st = control::current_state(&c)?;
            let observed = st.as_ref().map(state::observed_status);
            let spec = oci_spec::runtime::Spec::load(c.paths.spec()).ok();
            let process = spec.as_ref().and_then(|s| s.process().clone());
            out.push(json!({
                "Id": c.record.id, "Name": c.record.name, "Created": c.record.created,
                "Image": c.record.image, "ImageDigest": c.record.image_digest,
                "State": st, "ObservedStatus": observed.as_ref().map(|o| o.status.as_str()),
                "Stale": observed.as_ref().and_then(|o| o.stale.as_ref()).map(ToString::to_string),
                "Config": {
                    "Cmd": c.record.command,
                    "Env": process.as_ref().and_then(|p| p.env().clone()),
                    "WorkingDir": process.as_ref().map(|p| p.cwd().clone()),
                    "User": process.as_ref().map(|p| json!({"uid": p.user().uid(), "gid": p.user().gid()})),
                    "Hostname": spec.as_ref().and_then(|s| s.hostname().clone()),
                    "Tty": c.record.tty,
                },
                "Ports": c.record.ports, "RestartPolicy": c.record.restart, "AutoRemove": c.record.auto_remove,
                "Cgroup": c.record.cgroup, "Labels": c.record.labels,
                "HostConfig": {
                    "SecurityOpt": c.record.security.as_opts(),
                    "CapAdd": c.record.security.cap_add, "CapDrop": c.record.security.cap_drop,
                    "Privileged": c.record.security.privileged, "ReadonlyRootfs": c.record.read_only,
                    "Tmpfs": c.record.tmpfs, "Init": !c.record.no_init,
                },
                "Seccomp": c.record.security.seccomp_name(),
                "NoNewPrivileges": process.as_ref().and_then(|p| p.no_new_privileges()).unwrap_or(false),
                "GraphDriver": { "Name": "overlay", "UpperDir": c.paths.upper(), "LowerDirs": c.record.lowers },
                "LogPath": c.paths.log(),
            }));
            continue;
        }
        let found = {
            let _shared = store.lock_shared()?;
            store.resolve_image(name)
        };
        let image = match found {
            Ok(image) => image,
            // Not an image: an archive file named without a path or .tar?
            Err(_) if std::path::Path::new(name).is_file() => {
                out.push(super::archive::inspect(std::path::Path::new(name))?);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        out.push(json!({
            "Id": image.manifest_digest, "Name": image.name,
            "Config": image.config, "Manifest": image.manifest,
        }));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
