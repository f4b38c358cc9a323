//! Referrer classification: search, social, email, internal, direct, unknown.
//!
//! Data: Snowplow's referer-parser database, regrouped in `data/referers.tsv`
//! (see its header for source and licence).

use super::url::{host, query_pairs};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::OnceLock;

const DATA: &str = include_str!("../../data/referers.tsv");

/// How the visitor got here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Referrer {
    /// `search`, `social`, `email`, `internal`, `direct` or `unknown`.
    pub medium: &'static str,
    /// The known source (`Google`, `Facebook`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The search term, when a search engine passed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
}

struct Known {
    medium: &'static str,
    source: &'static str,
    params: Vec<&'static str>,
}

fn table() -> &'static HashMap<&'static str, Known> {
    static TABLE: OnceLock<HashMap<&'static str, Known>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut map = HashMap::new();
        for line in DATA
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let mut cols = line.split('\t');
            let (Some(medium), Some(source), Some(params), Some(domains)) =
                (cols.next(), cols.next(), cols.next(), cols.next())
            else {
                continue;
            };
            for domain in domains.split(' ').filter(|d| !d.is_empty()) {
                map.entry(domain).or_insert_with(|| Known {
                    medium,
                    source,
                    params: params.split(',').filter(|p| !p.is_empty()).collect(),
                });
            }
        }
        map
    })
}

/// Find the entry for `host` or one of its parent domains.
fn lookup(host: &str, path: &str) -> Option<&'static Known> {
    let table = table();
    let mut candidate = host.trim_start_matches("www.");
    loop {
        // Entries may include a path (e.g. `google.com/imgres`); try the longest first.
        let with_path = format!("{candidate}{path}");
        if let Some(k) = table
            .get(with_path.as_str())
            .or_else(|| table.get(candidate))
        {
            return Some(k);
        }
        candidate = candidate.split_once('.')?.1;
        if !candidate.contains('.') {
            return table.get(candidate);
        }
    }
}

/// Classify `referrer` for a page on `page_host`.
pub fn classify(referrer: Option<&str>, page_host: Option<&str>) -> Referrer {
    let referrer = referrer
        .map(str::trim)
        .filter(|r| !r.is_empty() && *r != "$direct");
    let Some(referrer) = referrer else {
        return Referrer {
            medium: "direct",
            source: None,
            term: None,
        };
    };
    let Some(ref_host) = host(referrer) else {
        return Referrer {
            medium: "unknown",
            source: None,
            term: None,
        };
    };
    let bare = |h: &str| h.trim_start_matches("www.").to_owned();
    if page_host.is_some_and(|p| bare(p) == bare(&ref_host)) {
        return Referrer {
            medium: "internal",
            source: None,
            term: None,
        };
    }
    let path = super::url::path(referrer);
    match lookup(&ref_host, &path) {
        Some(k) => {
            let term = (k.medium == "search")
                .then(|| {
                    query_pairs(referrer)
                        .into_iter()
                        .find(|(name, v)| k.params.contains(&name.as_str()) && !v.is_empty())
                        .map(|(_, v)| v)
                })
                .flatten();
            Referrer {
                medium: k.medium,
                source: Some(k.source.to_owned()),
                term,
            }
        }
        None => Referrer {
            medium: "unknown",
            source: Some(bare(&ref_host)),
            term: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(r: &str) -> Referrer {
        classify(Some(r), Some("shop.example.com"))
    }

    #[test]
    fn classifies_search_with_terms() {
        let r = c("https://www.google.com/search?q=blue+mug&hl=en");
        assert_eq!(
            (r.medium, r.source.as_deref(), r.term.as_deref()),
            ("search", Some("Google"), Some("blue mug"))
        );
        assert_eq!(c("https://www.google.de/").medium, "search");
        assert_eq!(
            c("https://duckduckgo.com/?q=mug").term.as_deref(),
            Some("mug")
        );
        assert_eq!(
            c("https://www.bing.com/search?q=x").term.as_deref(),
            Some("x")
        );
    }

    #[test]
    fn classifies_social_email_internal_direct_unknown() {
        assert_eq!(c("https://www.facebook.com/").medium, "social");
        assert_eq!(
            c("https://m.facebook.com/story").source.as_deref(),
            Some("Facebook")
        );
        assert_eq!(c("https://mail.google.com/mail/u/0/").medium, "email");
        assert_eq!(c("https://shop.example.com/cart").medium, "internal");
        assert_eq!(c("https://www.shop.example.com/").medium, "internal");
        assert_eq!(classify(None, None).medium, "direct");
        assert_eq!(classify(Some(""), None).medium, "direct");
        assert_eq!(
            classify(Some("$direct"), None).medium,
            "direct",
            "RudderStack's marker"
        );
        let u = c("https://blog.someone.net/post");
        assert_eq!(
            (u.medium, u.source.as_deref()),
            ("unknown", Some("blog.someone.net"))
        );
        assert_eq!(c("android-app://com.x").medium, "unknown");
    }
}
