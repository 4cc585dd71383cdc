//! `berth search`: repositories whose name contains a term.
//!
//! Docker Hub has a search service (`index.docker.io/v1/search`), which
//! berth asks. Other registries have no search, but the distribution API's
//! catalog (`/v2/_catalog`, paged with `Link: <…>; rel="next"`) lists their
//! repositories, which berth filters by the term. Registries that do not
//! offer the catalog say so with an error.

use super::session::{Body, Session, read_small};
use super::{Client, RegistryError};
use crate::oci::reference::DEFAULT_REGISTRY;

/// The most catalog pages read.
const MAX_PAGES: usize = 100;

/// One repository found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    /// As it would be pulled: `127.0.0.1:5000/team/app`, or `debian` on Docker Hub.
    pub name: String,
    /// Docker Hub's description, stars and official mark.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stars: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub official: Option<bool>,
}

impl Client {
    /// At most `limit` repositories of `registry` whose name contains
    /// `term` (case-insensitively), sorted by name (Docker Hub: by its
    /// relevance).
    pub fn search(&self, registry: &str, term: &str, limit: usize) -> Result<Vec<Found>, RegistryError> {
        if registry == DEFAULT_REGISTRY {
            return self.search_hub(term, limit);
        }
        let session = Session::open(self, registry, vec!["registry:catalog:*".to_owned()])?;
        let wanted = term.to_lowercase();
        let mut found = Vec::new();
        let mut next = Some(session.url("/v2/_catalog?n=1000"));
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else { break };
            let response = session.send("GET", &url, &[], &Body::Empty, "the catalog")?;
            match response.status().as_u16() {
                200 => {}
                status @ (401 | 403 | 404) => {
                    drop(read_small(response));
                    return Err(RegistryError::NoCatalog { registry: registry.to_owned(), status });
                }
                _ => return Err(session.fail(response, "the catalog", super::session::Target::Registry)),
            }
            next = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .map(|l| session.url(&l));
            #[derive(serde::Deserialize)]
            struct Catalog {
                #[serde(default)]
                repositories: Vec<String>,
            }
            let body = response.into_body().with_config().limit(16 << 20).read_to_vec().map_err(|e| {
                RegistryError::Transfer {
                    registry: registry.to_owned(),
                    what: "the catalog".into(),
                    why: e.to_string(),
                }
            })?;
            let page: Catalog = serde_json::from_slice(&body).map_err(|e| RegistryError::BadContent {
                registry: registry.to_owned(),
                what: "the catalog".into(),
                why: e.to_string(),
            })?;
            found.extend(page.repositories.into_iter().filter(|r| r.to_lowercase().contains(&wanted)));
        }
        found.sort();
        found.dedup();
        Ok(found
            .into_iter()
            .take(limit)
            .map(|r| Found { name: format!("{registry}/{r}"), description: None, stars: None, official: None })
            .collect())
    }

    fn search_hub(&self, term: &str, limit: usize) -> Result<Vec<Found>, RegistryError> {
        let url = "https://index.docker.io/v1/search";
        let fail =
            |why: String| RegistryError::Transfer { registry: DEFAULT_REGISTRY.into(), what: "the search".into(), why };
        let mut response = self
            .agent
            .get(url)
            .query("q", term)
            .query("n", limit.clamp(1, 100).to_string())
            .call()
            .map_err(|e| super::client::Failure::of(e).into_error(DEFAULT_REGISTRY, url, "the search"))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status().as_u16())));
        }
        #[derive(serde::Deserialize)]
        struct Results {
            results: Vec<Hit>,
        }
        #[derive(serde::Deserialize)]
        struct Hit {
            name: String,
            #[serde(default)]
            description: String,
            #[serde(default)]
            star_count: u64,
            #[serde(default)]
            is_official: bool,
        }
        let body = response.body_mut().with_config().limit(16 << 20).read_to_vec().map_err(|e| fail(e.to_string()))?;
        let results: Results = serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))?;
        Ok(results
            .results
            .into_iter()
            .take(limit)
            .map(|h| Found {
                name: h.name,
                description: Some(h.description),
                stars: Some(h.star_count),
                official: Some(h.is_official),
            })
            .collect())
    }
}

/// The target of a `Link` header's `rel="next"`.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find(|part| part.contains("rel=\"next\"") || part.contains("rel=next")).and_then(|part| {
        let start = part.find('<')? + 1;
        let end = part[start..].find('>')? + start;
        Some(part[start..end].to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_give_the_next_page() {
        assert_eq!(next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(), Some("/v2/_catalog?last=b&n=2"));
        assert_eq!(next_link(r#"<a>; rel="prev", <b>; rel="next""#).as_deref(), Some("b"));
        assert_eq!(next_link(r#"<a>; rel="prev""#), None);
    }
}
