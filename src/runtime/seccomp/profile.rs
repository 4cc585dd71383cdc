//! A seccomp profile in Docker's JSON format, the one `docker run
//! --security-opt seccomp=FILE` reads: OCI's `linux.seccomp` object plus
//! Docker's conditions on each rule (`includes`/`excludes` by capability,
//! architecture and kernel version) and its `archMap`. An OCI
//! `linux.seccomp` object is a profile without conditions, so both read
//! here. [`Profile::resolve`] decides the conditions for one container and
//! gives the OCI object its spec carries.

use std::path::Path;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

use super::SeccompError;

/// The architecture names Docker's conditions use for this host.
const THIS_ARCH: &str = "amd64";

/// A profile as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: LinuxSeccompAction,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// OCI's list of architectures; x86_64 is the only one berth filters
    /// for (the others are refused, see the module overview).
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
    /// Docker's architectures and their sub-architectures: read, and
    /// treated as `architectures`.
    #[serde(default)]
    pub arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    pub flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    pub listener_path: Option<String>,
    #[serde(default)]
    pub syscalls: Option<Vec<Rule>>,
}

/// One entry of Docker's `archMap`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default)]
    pub sub_architectures: Option<Vec<String>>,
}

/// A rule: an action for some system calls, maybe only for some argument
/// values, maybe only for some containers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default)]
    pub names: Vec<String>,
    /// Docker's older form: one name.
    #[serde(default)]
    pub name: Option<String>,
    pub action: LinuxSeccompAction,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Option<Vec<Arg>>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub includes: Option<Filter>,
    #[serde(default)]
    pub excludes: Option<Filter>,
}

/// An argument comparison. `value_two` is the expected value of
/// `SCMP_CMP_MASKED_EQ` (`value` is its mask).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: usize,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: LinuxSeccompOperator,
}

/// Docker's conditions: `includes` applies a rule only when all of them
/// hold, `excludes` leaves it out when any holds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub arches: Vec<String>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// What a rule's conditions are decided against.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The container's effective capabilities, bit N for capability N.
    pub caps: u64,
    /// The running kernel's `(major, minor)`.
    pub kernel: (u32, u32),
}

impl Profile {
    /// Reads and checks the profile in `path`: errors name the file, and
    /// the line and column for JSON mistakes.
    pub fn load(path: &Path) -> Result<Profile, SeccompError> {
        let text = std::fs::read(path).map_err(|source| SeccompError::Read { path: path.to_path_buf(), source })?;
        let profile: Profile = serde_json::from_slice(&text).map_err(|e| SeccompError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            reason: e.to_string(),
        })?;
        profile.check().map_err(|reason| SeccompError::Invalid { path: path.to_path_buf(), reason })?;
        // Every rule, as for a container that has every capability.
        let all = profile.resolve(Context { caps: u64::MAX, kernel: (u32::MAX, 0) });
        super::compile(&all).map_err(|source| SeccompError::Compile { path: path.to_path_buf(), source })?;
        Ok(profile)
    }

    /// The mistakes serde cannot see.
    fn check(&self) -> Result<(), String> {
        if self.listener_path.is_some() || self.default_action == LinuxSeccompAction::ScmpActNotify {
            return Err("SCMP_ACT_NOTIFY and listenerPath are not supported (berth has no seccomp agent)".into());
        }
        for (i, rule) in self.syscalls.iter().flatten().enumerate() {
            let at = |what: String| format!("syscalls[{i}] ({}): {what}", rule.all_names().join(", "));
            if rule.all_names().is_empty() {
                return Err(format!("syscalls[{i}]: no names (give \"names\": [\"mkdir\", …])"));
            }
            if rule.action == LinuxSeccompAction::ScmpActNotify {
                return Err(at("SCMP_ACT_NOTIFY is not supported (berth has no seccomp agent)".into()));
            }
            for arg in rule.args.iter().flatten() {
                if arg.index > 5 {
                    return Err(at(format!("argument index {} (a system call has arguments 0 to 5)", arg.index)));
                }
            }
            for cap in rule.includes.iter().chain(&rule.excludes).flat_map(|f| &f.caps) {
                if crate::sys::caps::number(cap).is_none() {
                    return Err(at(format!("unknown capability {cap:?} (as in CAP_SYS_ADMIN)")));
                }
            }
            for min in rule.includes.iter().filter_map(|f| f.min_kernel.as_deref()) {
                parse_kernel(min).ok_or_else(|| at(format!("minKernel {min:?} (expected MAJOR.MINOR, as in 4.8)")))?;
            }
        }
        Ok(())
    }

    /// The OCI `linux.seccomp` object for a container in `ctx`: the rules
    /// whose conditions hold, in order.
    pub fn resolve(&self, ctx: Context) -> LinuxSeccomp {
        let syscalls: Vec<LinuxSyscall> = self
            .syscalls
            .iter()
            .flatten()
            .filter(|rule| rule.applies(ctx))
            .map(|rule| {
                let mut s = LinuxSyscall::default();
                s.set_names(rule.all_names());
                s.set_action(rule.action);
                s.set_errno_ret(rule.errno_ret);
                s.set_args(rule.args.as_ref().map(|args| args.iter().map(|a| a.to_oci()).collect()));
                s
            })
            .collect();
        let mut out = LinuxSeccomp::default();
        out.set_default_action(self.default_action);
        out.set_default_errno_ret(self.default_errno_ret);
        out.set_architectures(Some(vec![oci_spec::runtime::Arch::ScmpArchX86_64]));
        out.set_flags(self.flags.clone().filter(|f| !f.is_empty()));
        out.set_syscalls(Some(syscalls));
        out
    }
}

impl Rule {
    fn all_names(&self) -> Vec<String> {
        self.names.iter().chain(&self.name).cloned().collect()
    }

    fn applies(&self, ctx: Context) -> bool {
        let has_cap = |c: &String| crate::sys::caps::number(c).is_some_and(|n| ctx.caps & (1u64 << n) != 0);
        if let Some(inc) = &self.includes {
            let arch_ok = inc.arches.is_empty() || inc.arches.iter().any(|a| a == THIS_ARCH);
            let kernel_ok = inc.min_kernel.as_deref().and_then(parse_kernel).is_none_or(|min| ctx.kernel >= min);
            if !(arch_ok && kernel_ok && inc.caps.iter().all(has_cap)) {
                return false;
            }
        }
        if let Some(exc) = &self.excludes
            && (exc.arches.iter().any(|a| a == THIS_ARCH) || exc.caps.iter().any(has_cap))
        {
            return false;
        }
        true
    }
}

impl Arg {
    fn to_oci(self) -> LinuxSeccompArg {
        let b = LinuxSeccompArgBuilder::default().index(self.index).value(self.value).op(self.op);
        let b = if self.value_two != 0 { b.value_two(self.value_two) } else { b };
        b.build().expect("every field is set")
    }
}

/// `"4.8"` (or `"5.10.3"`) as `(4, 8)`.
pub(super) fn parse_kernel(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| {
        let digits: String = m.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })?;
    Some((major, minor))
}
