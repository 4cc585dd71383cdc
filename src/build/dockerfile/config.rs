//! The image config a Dockerfile's target stage gets, as Docker (BuildKit)
//! writes it: the base image's `config` section with each config
//! instruction laid over it (`Env`, `Cmd`, `Entrypoint`, `WorkingDir`,
//! `User`, `ExposedPorts`, `Volumes`, `Labels`, `StopSignal`,
//! `Healthcheck`, `Shell`, `OnBuild`; `MAINTAINER` sets the top-level
//! `author`), and one history entry per instruction, `created_by` as
//! BuildKit writes it, `empty_layer` where the instruction made no layer.

use serde_json::{Map, Value, json};

use crate::dockerfile::expand::{ExpandedStage, Step};
use crate::dockerfile::instruction::{Form, Health, Instruction};

/// What the instructions of a chain of stages did to the config.
#[derive(Debug, Default)]
pub struct Applied {
    /// The `config` section.
    pub config: Map<String, Value>,
    pub author: Option<String>,
    /// `(created_by, empty_layer)` per instruction.
    pub history: Vec<(String, bool)>,
}

/// BuildKit's history comment for the instructions it records.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

fn argv_json(argv: &[String]) -> Value {
    Value::Array(argv.iter().map(|s| Value::String(s.clone())).collect())
}

fn text_json(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn nanos(d: Option<std::time::Duration>) -> Option<Value> {
    d.map(|d| json!(d.as_nanos() as u64))
}

/// Lays `stage`'s instructions over `applied` (the base's config, or the
/// stage it starts from). `layered(i)` says whether step `i` made a layer.
pub fn apply_stage(applied: &mut Applied, stage: &ExpandedStage, layered: &dyn Fn(usize) -> bool) {
    let c = &mut applied.config;
    let mut cmd_set = false;
    for (i, step) in stage.steps.iter().enumerate() {
        let created_by = created_by(step);
        match &step.instruction {
            Instruction::Cmd(cl) => {
                c.insert("Cmd".into(), argv_json(&cl.argv(&step.shell)));
                cmd_set = true;
            }
            Instruction::Entrypoint(cl) => {
                let argv = cl.argv(&step.shell);
                if argv.is_empty() {
                    c.remove("Entrypoint");
                } else {
                    c.insert("Entrypoint".into(), argv_json(&argv));
                }
                // An ENTRYPOINT resets a CMD the stage did not set itself.
                if !cmd_set {
                    c.remove("Cmd");
                }
            }
            Instruction::Label(pairs) => {
                let labels = c.entry("Labels").or_insert_with(|| json!({}));
                if !labels.is_object() {
                    *labels = json!({});
                }
                for (k, v) in pairs {
                    labels[k] = Value::String(v.clone());
                }
            }
            Instruction::Maintainer(m) => applied.author = Some(m.clone()),
            Instruction::Expose(ports) => {
                let exposed = c.entry("ExposedPorts").or_insert_with(|| json!({}));
                if !exposed.is_object() {
                    *exposed = json!({});
                }
                for p in ports {
                    let key = if p.contains('/') { p.clone() } else { format!("{p}/tcp") };
                    exposed[key] = json!({});
                }
            }
            Instruction::Volume(paths) => {
                let volumes = c.entry("Volumes").or_insert_with(|| json!({}));
                if !volumes.is_object() {
                    *volumes = json!({});
                }
                for p in paths {
                    volumes[p] = json!({});
                }
            }
            Instruction::User(u) => {
                c.insert("User".into(), Value::String(u.clone()));
            }
            Instruction::Workdir(d) => {
                c.insert("WorkingDir".into(), Value::String(d.clone()));
            }
            Instruction::StopSignal(s) => {
                c.insert("StopSignal".into(), Value::String(s.clone()));
            }
            Instruction::Shell(sh) => {
                c.insert("Shell".into(), argv_json(sh));
            }
            Instruction::Onbuild(o) => {
                let list = c.entry("OnBuild").or_insert_with(|| json!([]));
                if !list.is_array() {
                    *list = json!([]);
                }
                if let Some(a) = list.as_array_mut() {
                    a.push(Value::String(o.expression.clone()));
                }
            }
            Instruction::Healthcheck(Health::None) => {
                c.insert("Healthcheck".into(), json!({ "Test": ["NONE"] }));
            }
            Instruction::Healthcheck(Health::Check(h)) => {
                let mut hc = Map::new();
                hc.insert("Test".into(), argv_json(&h.test));
                for (k, d) in [
                    ("Interval", h.interval),
                    ("Timeout", h.timeout),
                    ("StartPeriod", h.start_period),
                    ("StartInterval", h.start_interval),
                ] {
                    if let Some(v) = nanos(d) {
                        hc.insert(k.into(), v);
                    }
                }
                if let Some(r) = h.retries {
                    hc.insert("Retries".into(), json!(r));
                }
                c.insert("Healthcheck".into(), Value::Object(hc));
            }
            _ => {}
        }
        applied.history.push((created_by, !layered(i)));
    }
    // The env as the stage ends: the base's, PATH, every ENV.
    let env: Vec<Value> = stage.image_env.0.iter().map(|(k, v)| Value::String(format!("{k}={v}"))).collect();
    c.insert("Env".into(), Value::Array(env));
}

/// An instruction as BuildKit's history shows it.
pub fn created_by(step: &Step) -> String {
    let args = |pairs: &[(String, String)]| pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
    match &step.instruction {
        Instruction::Run(r) => {
            let argv = r.command.argv(&step.shell);
            let shown = match &r.command.form {
                Form::Shell(_) if !r.command.heredocs.is_empty() => {
                    let body: String = r.command.heredocs.iter().map(|h| h.text()).collect();
                    format!("{} {}", step.shell.join(" "), body.trim_end())
                }
                _ => argv.join(" "),
            };
            let build_args = &step.build_args.0;
            if build_args.is_empty() {
                format!("RUN {shown} # buildkit")
            } else {
                format!("RUN |{} {} {shown} # buildkit", build_args.len(), args(build_args))
            }
        }
        Instruction::Copy(c) => {
            let from = c.from.as_ref().map(|f| format!("--from={f} ")).unwrap_or_default();
            format!("COPY {from}{}{} # buildkit", owner_mode(&c.chown, &c.chmod), files(&c.sources))
        }
        Instruction::Add(a) => format!("ADD {}{} # buildkit", owner_mode(&a.chown, &a.chmod), files(&a.sources)),
        Instruction::Env(pairs) => format!("ENV {}", args(pairs)),
        Instruction::Label(pairs) => format!("LABEL {}", args(pairs)),
        Instruction::Arg(decls) => format!(
            "ARG {}",
            decls
                .iter()
                .map(|d| d.default.as_ref().map_or_else(|| d.name.clone(), |v| format!("{}={v}", d.name)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Instruction::Cmd(c) => format!("CMD {}", text_json(&argv_json(&c.argv(&step.shell)))),
        Instruction::Entrypoint(c) => format!("ENTRYPOINT {}", text_json(&argv_json(&c.argv(&step.shell)))),
        Instruction::Expose(ports) => {
            let list: Vec<String> = ports
                .iter()
                .map(|p| if p.contains('/') { format!("{p}:{{}}") } else { format!("{p}/tcp:{{}}") })
                .collect();
            format!("EXPOSE map[{}]", list.join(" "))
        }
        Instruction::Volume(v) => format!("VOLUME {}", text_json(&argv_json(v))),
        Instruction::User(u) => format!("USER {u}"),
        Instruction::Workdir(d) => format!("WORKDIR {d}"),
        Instruction::StopSignal(s) => format!("STOPSIGNAL {s}"),
        Instruction::Shell(sh) => format!("SHELL {}", text_json(&argv_json(sh))),
        Instruction::Onbuild(o) => format!("ONBUILD {}", o.expression),
        Instruction::Maintainer(m) => format!("MAINTAINER {m}"),
        Instruction::Healthcheck(_) | Instruction::From(_) => step.original.clone(),
    }
}

fn owner_mode(chown: &Option<String>, chmod: &Option<String>) -> String {
    let mut out = String::new();
    if let Some(c) = chown {
        out.push_str(&format!("--chown={c} "));
    }
    if let Some(m) = chmod {
        out.push_str(&format!("--chmod={m} "));
    }
    out
}

fn files(s: &crate::dockerfile::instruction::Sources) -> String {
    let mut words: Vec<String> = s.paths.clone();
    words.extend(s.inline.iter().map(|f| format!("<<{}", f.name)));
    words.push(s.dest.clone());
    words.join(" ")
}
