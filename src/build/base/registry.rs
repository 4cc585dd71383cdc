//! Registry bases: `image = "127.0.0.1:5000/team/base:1"` or `debian:bookworm`.
//!
//! An image the store already has is used as it is: the locked digest's
//! manifest when `berth.lock` pins one, else the tag the reference's pull
//! gives it (`127.0.0.1:5000/team/base:1`, `debian:bookworm`). Otherwise
//! the image is pulled with the registry client (see `crate::registry`),
//! by the locked digest when there is one (so a tag moved since the lock
//! cannot change the base), else by the tag, which is then set locally.
//! `berth lock` ([`RegistryPin::Refresh`]) always pulls the tag afresh.
//! Registry settings and credentials come from the environment, as for
//! `berth pull`.

use super::error::Context;
use super::{BaseError, BaseImage, RegistryPin, finish};
use crate::oci::ImageRef;
use crate::registry::{Client, PullOptions, Settings};
use crate::store::Store;

/// Makes the registry image `reference`, found as `pin` says, a base.
pub(super) fn materialise(
    store: &Store,
    base: &str,
    reference: &str,
    pin: RegistryPin<'_>,
) -> Result<BaseImage, BaseError> {
    let wrap = |source| BaseError::Registry { base: base.into(), source: Box::new(source) };
    let parsed: ImageRef = reference.parse().map_err(|e| wrap(crate::registry::RegistryError::Reference(e)))?;
    let local = match pin {
        RegistryPin::Digest(digest) => store.has_blob(digest).then(|| digest.to_string()),
        RegistryPin::Tag => Some(parsed.familiar_tag()),
        RegistryPin::Refresh => None,
    };
    if let Some(image) = local.and_then(|name| store.resolve_image(&name).ok()) {
        let digest = image.manifest_digest.clone();
        return finish(store, base, (digest.clone(), image.manifest), image.config, image.layers, Some(digest));
    }
    let wanted = match pin {
        RegistryPin::Digest(digest) => parsed.with_digest(digest.clone()),
        RegistryPin::Tag | RegistryPin::Refresh => parsed,
    };
    let client = Client::new(Settings::from_env().map_err(wrap)?).map_err(wrap)?;
    let options = PullOptions { tag: !matches!(pin, RegistryPin::Digest(_)), ..PullOptions::default() };
    let pulled = client.pull(store, &wanted, &options, &|_| {}).map_err(wrap)?;
    let digest = pulled.digest.clone();
    let image = store.resolve_image(&digest.to_string()).in_base(base)?;
    finish(store, base, (digest.clone(), image.manifest), image.config, image.layers, Some(digest))
}
