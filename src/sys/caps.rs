//! Linux capabilities of the current thread, as 64-bit masks (bit N is
//! capability number N), over the `caps` crate.
//!
//! Masks keep the child side of a container start free of name lookups:
//! the runtime turns the spec's capability names into masks before it forks.

use std::io;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};

fn err(e: caps::errors::CapsError) -> io::Error {
    io::Error::other(e.to_string())
}

/// The capability number of `name` (`"CAP_CHOWN"` or `"CHOWN"`, any case).
pub fn number(name: &str) -> Option<u8> {
    Capability::from_str(&canonical_name(name)?).ok().map(|c| c.index())
}

/// `name` as `CAP_NAME` (any case, with or without the prefix, spaces
/// around trimmed) when this build knows it; the one reading of a
/// capability name for the manifest, `--cap-add` and the spec.
pub fn canonical_name(name: &str) -> Option<String> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    Capability::from_str(&full).is_ok().then_some(full)
}

/// Every capability this process can grant, as `CAP_…` names: those of
/// its bounding set (within what the kernel knows), which is what `ALL`
/// means; a set naming one outside it cannot be set.
pub fn supported_names() -> Vec<String> {
    let bounding = caps::read(None, CapSet::Bounding).unwrap_or_else(|_| caps::runtime::thread_all_supported());
    let mut names: Vec<String> = bounding.into_iter().map(|c| c.to_string()).collect();
    names.sort();
    names
}

fn to_set(mask: u64) -> CapsHashSet {
    caps::all().into_iter().filter(|c| mask & c.bitmask() != 0).collect()
}

/// Drops from the bounding set every capability the kernel knows that is not
/// in `keep`. Needs `CAP_SETPCAP` in the effective set.
pub fn limit_bounding(keep: u64) -> io::Result<()> {
    for cap in caps::runtime::thread_all_supported() {
        if keep & cap.bitmask() == 0 {
            caps::drop(None, CapSet::Bounding, cap).map_err(err)?;
        }
    }
    Ok(())
}

/// Sets the effective, inheritable and permitted sets, in that order (so
/// that each step stays within what the kernel allows: effective within the
/// old permitted, then permitted shrunk to its final value).
pub fn set_sets(effective: u64, inheritable: u64, permitted: u64) -> io::Result<()> {
    caps::set(None, CapSet::Effective, &to_set(effective)).map_err(err)?;
    caps::set(None, CapSet::Inheritable, &to_set(inheritable)).map_err(err)?;
    caps::set(None, CapSet::Permitted, &to_set(permitted)).map_err(err)?;
    Ok(())
}

/// Clears the ambient set, then raises each capability of `mask` in it.
pub fn set_ambient(mask: u64) -> io::Result<()> {
    caps::clear(None, CapSet::Ambient).map_err(err)?;
    for cap in to_set(mask) {
        caps::raise(None, CapSet::Ambient, cap).map_err(err)?;
    }
    Ok(())
}

/// `PR_SET_KEEPCAPS`: keep the permitted set across a change of uid from 0.
pub fn set_keepcaps(keep: bool) -> io::Result<()> {
    Ok(nix::sys::prctl::set_keepcaps(keep)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_names() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("setfcap"), Some(31));
        assert_eq!(number("CAP_NOPE"), None);
    }
}
