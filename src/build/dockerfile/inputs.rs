//! What COPY and ADD read from outside the context, made ready before the
//! graph is keyed: each image a `COPY --from` names (not a stage: resolved
//! as `FROM IMAGE` is, the store's image of that name else a pull), and
//! each URL an ADD fetches without `--checksum` (its key is the content's
//! digest, so it is fetched first; Docker fetches every build too).

use std::path::Path;

use super::DockerBuildError;
use super::url;
use crate::build::base::{self, RegistryPin};
use crate::dockerfile::expand::Expanded;
use crate::manifest::{Base, ImageSource};
use crate::resolve::dockerfile::copy::{CopyImage, CopyInputs, CopySpec, FromRef, from_ref, is_url};
use crate::store::Store;

/// The prepared inputs and the directory holding fetched files (removed
/// when dropped).
pub struct Prepared {
    pub inputs: CopyInputs,
    pub _dir: Option<tempfile::TempDir>,
}

/// Makes the `--from` images and fetches the URLs the needed stages name.
pub fn prepare(
    store: &Store,
    context: &Path,
    epoch: u64,
    expanded: &Expanded,
    file: &Path,
) -> Result<Prepared, DockerBuildError> {
    let mut inputs = CopyInputs::default();
    let mut dir: Option<tempfile::TempDir> = None;
    for stage in &expanded.stages {
        for step in &stage.steps {
            let Some(spec) = CopySpec::of(&step.instruction) else { continue };
            let at = format!("{}:{}", file.display(), step.pos);
            if let Some(name) = spec.from
                && from_ref(expanded, name) == Ok(FromRef::Image)
                && !inputs.images.contains_key(name)
            {
                let r: crate::oci::ImageRef = name.parse().map_err(|e| {
                    crate::dockerfile::error::Located::new(step.pos, format!("COPY --from={name}: {e}")).in_file(file)
                })?;
                let source = Base::Image(ImageSource::Registry { reference: r.to_string() });
                let img = base::materialise_pinned(store, context, &source, epoch, RegistryPin::Tag)
                    .map_err(|e| DockerBuildError::Base { at: at.clone(), source: Box::new(e) })?;
                let digest = img.digest.as_ref().map(|d| d.to_string()).unwrap_or_default();
                let key_fields = vec![b"registry".to_vec(), r.to_string().into_bytes(), digest.into_bytes()];
                inputs.images.insert(name.to_owned(), CopyImage { key_fields, layers: img.layers });
            }
            if !spec.add() || spec.checksum.is_some() {
                continue;
            }
            for u in spec.sources.paths.iter().filter(|p| is_url(p)) {
                if inputs.urls.contains_key(u) {
                    continue;
                }
                let d = match &dir {
                    Some(d) => d,
                    None => dir.insert(scratch(store)?),
                };
                let into = d.path().join(format!("url-{}", inputs.urls.len()));
                let fetched =
                    url::fetch(u, &into, None).map_err(|e| DockerBuildError::Url { at: at.clone(), source: e })?;
                inputs.urls.insert(u.clone(), fetched);
            }
        }
    }
    Ok(Prepared { inputs, _dir: dir })
}

fn scratch(store: &Store) -> Result<tempfile::TempDir, DockerBuildError> {
    let tmp = store.tmp_dir();
    tempfile::Builder::new()
        .prefix("fetch-")
        .tempdir_in(&tmp)
        .map_err(|source| DockerBuildError::Scratch { path: tmp, source })
}
