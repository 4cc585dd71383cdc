//! Ordered variable lists as BuildKit keeps them (setting a name again
//! replaces it in place), and the arguments every build knows without
//! declaring them.

/// Name/value pairs in order; a name appears once.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Vars(pub Vec<(String, String)>);

impl Vars {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Sets `name`, replacing an earlier value where it stood.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.0.push((name.to_owned(), value.to_owned())),
        }
    }

    /// A lookup for [`super::shell::Lex::process`].
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name| self.get(name).map(str::to_owned)
    }
}

/// The proxy arguments Docker passes to RUN when given as build args, even
/// undeclared (and keeps out of the image and the cache key).
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The platform a build runs on and builds for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's platform, in OCI's names.
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "arm" => "arm",
            other => other,
        };
        let variant = match arch {
            "arm" => Some("v7".to_owned()),
            _ => None,
        };
        Platform { os: "linux".into(), arch: arch.into(), variant }
    }

    /// `os/arch[/variant]`.
    pub fn spec(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.arch),
            None => format!("{}/{}", self.os, self.arch),
        }
    }

    /// The automatic platform arguments (BUILD* for where the build runs,
    /// TARGET* for what it builds; berth builds for the machine it runs on).
    pub fn automatic_args(&self) -> Vars {
        let mut v = Vars::default();
        for prefix in ["BUILD", "TARGET"] {
            v.set(&format!("{prefix}PLATFORM"), &self.spec());
            v.set(&format!("{prefix}OS"), &self.os);
            v.set(&format!("{prefix}ARCH"), &self.arch);
            v.set(&format!("{prefix}VARIANT"), self.variant.as_deref().unwrap_or(""));
        }
        v
    }
}
