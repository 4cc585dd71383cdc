//! An image's existing runtime defaults as an [`ImageConfigInput`], so that
//! `--change` instructions apply on top of them (`berth commit`) the way
//! they apply to an empty config (`berth import`).

use oci_spec::image::Config;

use super::ImageConfigInput;

impl ImageConfigInput {
    /// The runtime defaults `config` holds: every field berth models (env
    /// `NAME=VALUE` entries without `=` are kept as empty values, as a
    /// runtime reads them).
    pub fn from_config(config: &Config) -> ImageConfigInput {
        let mut input = ImageConfigInput::default();
        for kv in config.env().iter().flatten() {
            let (name, value) = kv.split_once('=').unwrap_or((kv, ""));
            input.set_env(name, value);
        }
        input.cmd = config.cmd().clone();
        input.entrypoint = config.entrypoint().clone();
        input.working_dir = config.working_dir().clone().filter(|w| !w.is_empty());
        input.user = config.user().clone().filter(|u| !u.is_empty());
        input.labels = config.labels().clone().unwrap_or_default().into_iter().collect();
        input.exposed_ports = config.exposed_ports().iter().flatten().cloned().collect();
        input.volumes = config.volumes().iter().flatten().cloned().collect();
        input.stop_signal = config.stop_signal().clone();
        input
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_round_trips_and_takes_changes_on_top() {
        let mut input = ImageConfigInput::default();
        input.set_env("PATH", "/usr/bin:/bin");
        input.cmd = Some(vec!["sh".to_owned()]);
        input.working_dir = Some("/srv".to_owned());
        input.labels.insert("a".to_owned(), "1".to_owned());
        input.exposed_ports.insert("80/tcp".to_owned());
        let config = input.to_config().unwrap();
        let mut back = ImageConfigInput::from_config(&config);
        assert_eq!(back, input);
        back.apply_change("ENV PATH=/opt/bin:$PATH").unwrap();
        back.apply_change("CMD [\"top\"]").unwrap();
        assert_eq!(back.env_var("PATH"), Some("/opt/bin:/usr/bin:/bin"));
        assert_eq!(back.cmd, Some(vec!["top".to_owned()]));
        assert_eq!(back.working_dir.as_deref(), Some("/srv"));
    }
}
