//! Package installation: which package manager a base has, the
//! non-interactive command that installs `packages` without recommends and
//! cleans its caches in the same step, and the query that reads back the
//! exact versions for `berth.lock`.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The package managers berth drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Apt,
    Apk,
    Dnf,
    Microdnf,
}

impl Manager {
    /// The manager found in an image given as unpacked layers (top first).
    pub fn detect(lowers: &[PathBuf]) -> Option<Manager> {
        let has = |p: &str| lowers.iter().any(|l| std::fs::symlink_metadata(l.join(p)).is_ok());
        [
            ("usr/bin/apt-get", Manager::Apt),
            ("sbin/apk", Manager::Apk),
            ("usr/bin/dnf", Manager::Dnf),
            ("usr/bin/microdnf", Manager::Microdnf),
        ]
        .into_iter()
        .find_map(|(path, m)| has(path).then_some(m))
    }

    pub fn name(self) -> &'static str {
        match self {
            Manager::Apt => "apt",
            Manager::Apk => "apk",
            Manager::Dnf => "dnf",
            Manager::Microdnf => "microdnf",
        }
    }

    /// `name` pinned to `version` in this manager's syntax.
    fn pinned(self, name: &str, version: &str) -> String {
        match self {
            Manager::Apt | Manager::Apk => format!("{name}={version}"),
            Manager::Dnf | Manager::Microdnf => format!("{name}-{version}"),
        }
    }

    /// The shell script that installs `names` (pinned to `locked` versions
    /// where given) and leaves no caches behind.
    pub fn install_script(self, names: &[String], locked: &BTreeMap<String, String>) -> String {
        let pkgs: Vec<String> = names
            .iter()
            .map(|n| match locked.get(n) {
                Some(v) => self.pinned(n, v),
                None => n.clone(),
            })
            .map(|p| shell_quote(&p))
            .collect();
        let pkgs = pkgs.join(" ");
        match self {
            Manager::Apt => format!(
                "set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; \
                 apt-get install -y -qq --no-install-recommends {pkgs}; apt-get clean; \
                 rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
                 /var/cache/ldconfig/aux-cache"
            ),
            Manager::Apk => format!("set -e; apk add --no-cache {pkgs}"),
            Manager::Dnf => format!(
                "set -e; dnf install -y --setopt=install_weak_deps=False {pkgs}; dnf clean all; rm -rf /var/cache/dnf"
            ),
            Manager::Microdnf => {
                format!("set -e; microdnf install -y --setopt=install_weak_deps=0 {pkgs}; microdnf clean all")
            }
        }
    }

    /// A script printing `NAME<TAB>VERSION` for each of `names`.
    pub fn version_query(self, names: &[String]) -> String {
        let pkgs: Vec<String> = names.iter().map(|p| shell_quote(p)).collect();
        let pkgs = pkgs.join(" ");
        match self {
            Manager::Apt => format!("dpkg-query -W -f='${{Package}}\\t${{Version}}\\n' {pkgs}"),
            Manager::Apk => format!(
                "for p in {pkgs}; do printf '%s\\t%s\\n' \"$p\" \"$(apk info -e -v \"$p\" | sed \"s/^$p-//\")\"; done"
            ),
            Manager::Dnf | Manager::Microdnf => {
                format!("rpm -q --qf '%{{NAME}}\\t%{{VERSION}}-%{{RELEASE}}\\n' {pkgs}")
            }
        }
    }
}

/// Parses the output of [`Manager::version_query`].
pub fn parse_versions(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Single-quotes `s` for `/bin/sh`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_manager_of_a_layer_stack() {
        let dir = tempfile::tempdir().unwrap();
        let (low, top) = (dir.path().join("low"), dir.path().join("top"));
        std::fs::create_dir_all(low.join("usr/bin")).unwrap();
        std::fs::create_dir_all(&top).unwrap();
        std::fs::write(low.join("usr/bin/apt-get"), "").unwrap();
        assert_eq!(Manager::detect(&[top.clone(), low]), Some(Manager::Apt));
        assert_eq!(Manager::detect(&[top]), None);
    }

    #[test]
    fn scripts_pin_locked_versions_and_clean_up() {
        let locked = BTreeMap::from([("curl".to_owned(), "7.88.1-10+deb12u5".to_owned())]);
        let script = Manager::Apt.install_script(&["curl".into(), "jq".into()], &locked);
        assert!(script.contains("--no-install-recommends 'curl=7.88.1-10+deb12u5' 'jq'"), "{script}");
        assert!(script.contains("rm -rf /var/lib/apt/lists/*"), "{script}");
        assert!(Manager::Apk.install_script(&["jq".into()], &BTreeMap::new()).contains("--no-cache 'jq'"));
        assert!(Manager::Dnf.install_script(&["jq".into()], &locked).contains("install_weak_deps=False"));
    }

    #[test]
    fn parses_version_lists() {
        let v = parse_versions("curl\t7.88.1-10\njq\t1.6-2.1\n\nbroken\n");
        assert_eq!(v.len(), 2);
        assert_eq!(v["jq"], "1.6-2.1");
    }
}
