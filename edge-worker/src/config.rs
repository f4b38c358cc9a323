//! Typed configuration, read once per isolate from vars.
//!
//! `SLUICE_SOURCES` (JSON array, required): who may send events and how they
//! are treated. `SLUICE_SDK_PATH` (default `/sluice/v1`): where the SDK files
//! and the id endpoint are served. `SLUICE_COOKIE_DOMAIN` (optional): the
//! registrable domain for the server-set id cookie, so subdomains share it.
//! Unknown fields are rejected; a bad value fails every request loudly.

use serde::Deserialize;
use sluice_shared::consent::Policy;
use sluice_shared::enrich::bot::BotPolicy;
use sluice_shared::enrich::ip::IpPolicy;
use sluice_shared::plan::TrackingPlan;
use std::fmt;

pub mod tuning;
pub mod vars;

/// Var holding the sources.
pub const SOURCES_VAR: &str = "SLUICE_SOURCES";
/// Var holding the SDK path.
pub const SDK_PATH_VAR: &str = "SLUICE_SDK_PATH";
/// Var holding the cookie domain.
pub const COOKIE_DOMAIN_VAR: &str = "SLUICE_COOKIE_DOMAIN";
/// Default path of the SDK files.
pub const DEFAULT_SDK_PATH: &str = "/sluice/v1";

/// Requests per second and burst per write key and client.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests_per_second: f64,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            requests_per_second: 50.0,
            burst: 200,
        }
    }
}

/// One source: a site or app that sends events with its own write key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Stable name, stored with every event (`source` column).
    pub name: String,
    /// The public key the SDK sends; it can only ingest.
    pub write_key: String,
    /// Origins (`https://shop.example.com`, `https://*.example.com`, or `*`) allowed to send.
    pub allowed_origins: Vec<String>,
    /// The tracking plan events are checked against (see `sluice_shared::plan`).
    #[serde(default, deserialize_with = "plan")]
    pub tracking_plan: Option<TrackingPlan>,
    /// Consent policy (regime, required purposes, drop or anonymise).
    #[serde(default)]
    pub consent: Policy,
    /// What to store of the client IP: `truncate` (default), `keep`, `drop`.
    #[serde(default)]
    pub ip: IpPolicy,
    /// Bots: `flag` (default) or `drop`.
    #[serde(default)]
    pub bots: BotPolicy,
    /// Names of the destinations this source feeds (see the delivery config).
    #[serde(default)]
    pub destinations: Vec<String>,
    #[serde(default)]
    pub rate_limit: RateLimit,
    /// Delete events older than this many days (D1 and R2), daily.
    #[serde(default)]
    pub retention_days: Option<u32>,
}

fn plan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<TrackingPlan>, D::Error> {
    let Some(value) = Option::<serde_json::Value>::deserialize(d)? else {
        return Ok(None);
    };
    TrackingPlan::from_json(&value.to_string())
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl Source {
    /// Is a request from `origin` allowed? No `Origin` header (server-to-server) is.
    pub fn allows_origin(&self, origin: Option<&str>) -> bool {
        match origin {
            None => true,
            Some(origin) => self
                .allowed_origins
                .iter()
                .any(|p| origin_matches(p, origin)),
        }
    }
}

/// `*`, an exact origin, or `scheme://*.domain` for any subdomain.
pub fn origin_matches(pattern: &str, origin: &str) -> bool {
    if pattern == "*" || pattern.eq_ignore_ascii_case(origin) {
        return true;
    }
    match (pattern.split_once("://*."), origin.split_once("://")) {
        (Some((pscheme, pdomain)), Some((oscheme, ohost))) => {
            pscheme.eq_ignore_ascii_case(oscheme)
                && ohost
                    .to_ascii_lowercase()
                    .ends_with(&format!(".{}", pdomain.to_ascii_lowercase()))
        }
        _ => false,
    }
}

/// The whole worker configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub sources: Vec<Source>,
    /// Path prefix of the SDK files and the id endpoint, without a trailing slash.
    pub sdk_path: String,
    /// Domain attribute of the id cookie.
    pub cookie_domain: Option<String>,
    /// Admin API tokens (hashed).
    pub admin_tokens: Vec<crate::admin::tokens::AdminToken>,
    /// Computed traits and audiences (`SLUICE_AUDIENCES`); empty: none.
    pub audiences: sluice_shared::audience::Catalog,
    /// D1's hot window (`SLUICE_D1_*`).
    pub d1: crate::sinks::window::HotWindow,
    /// Dedup shards and window, lake compaction delay.
    pub tuning: tuning::Tuning,
}

/// Why the configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required var is not set.
    Missing(&'static str),
    /// A var is not valid JSON of the expected shape.
    Invalid(String),
    /// Two sources share a write key or a name.
    Duplicate(String),
}

impl ConfigError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Missing(_) => "config_missing",
            ConfigError::Invalid(_) => "config_invalid",
            ConfigError::Duplicate(_) => "config_duplicate",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing(var) => write!(f, "{var} is not set"),
            ConfigError::Invalid(why) => write!(f, "configuration is invalid: {why}"),
            ConfigError::Duplicate(what) => write!(f, "{SOURCES_VAR} repeats {what}"),
        }
    }
}

impl Config {
    /// Build from the vars' values.
    pub fn from_vars(
        sources_json: &str,
        sdk_path: Option<&str>,
        cookie_domain: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let sources: Vec<Source> = serde_json::from_str(sources_json)
            .map_err(|e| ConfigError::Invalid(format!("{SOURCES_VAR}: {e}")))?;
        for (i, s) in sources.iter().enumerate() {
            if s.write_key.is_empty() || s.name.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "{SOURCES_VAR}: source #{i} needs a non-empty name and write_key"
                )));
            }
            if !s.rate_limit.requests_per_second.is_finite()
                || s.rate_limit.requests_per_second <= 0.0
                || s.rate_limit.burst == 0
            {
                return Err(ConfigError::Invalid(format!(
                    "{SOURCES_VAR}: source `{}` needs a positive rate_limit",
                    s.name
                )));
            }
            if sources[..i].iter().any(|o| o.write_key == s.write_key) {
                return Err(ConfigError::Duplicate(format!(
                    "the write key of source `{}`",
                    s.name
                )));
            }
            if sources[..i].iter().any(|o| o.name == s.name) {
                return Err(ConfigError::Duplicate(format!("source name `{}`", s.name)));
            }
        }
        let sdk_path = sdk_path
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_SDK_PATH)
            .trim_end_matches('/')
            .to_owned();
        if !sdk_path.starts_with('/') || sdk_path.len() < 2 {
            return Err(ConfigError::Invalid(format!(
                "{SDK_PATH_VAR} must be an absolute path like /sluice/v1, got {sdk_path:?}"
            )));
        }
        Ok(Config {
            sources,
            sdk_path,
            admin_tokens: Vec::new(),
            audiences: sluice_shared::audience::Catalog::default(),
            d1: Default::default(),
            tuning: Default::default(),
            cookie_domain: cookie_domain
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
        })
    }

    /// Only sources, defaults elsewhere (tests).
    pub fn from_sources_json(json: &str) -> Result<Self, ConfigError> {
        Config::from_vars(json, None, None)
    }

    /// The source this write key belongs to.
    pub fn source_by_write_key(&self, key: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.write_key == key)
    }

    /// Is `origin` allowed by any source (for preflights, which carry no key)?
    pub fn any_source_allows(&self, origin: &str) -> bool {
        self.sources.iter().any(|s| s.allows_origin(Some(origin)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sources_and_finds_them_by_key() {
        let c = Config::from_sources_json(
            r#"[{"name":"web","write_key":"wk1","allowed_origins":["https://a.com"],"ip":"drop","bots":"drop",
                 "consent":{"regime":"opt_out","without_consent":"anonymize"}}]"#,
        )
        .unwrap();
        let s = c.source_by_write_key("wk1").unwrap();
        assert_eq!(s.name, "web");
        assert_eq!(s.ip, IpPolicy::Drop);
        assert_eq!(c.sdk_path, "/sluice/v1");
        assert!(c.source_by_write_key("nope").is_none());
    }

    #[test]
    fn unknown_fields_bad_plans_and_duplicates_fail_loudly() {
        let e = Config::from_sources_json(
            r#"[{"name":"a","write_key":"k","allowed_origins":[],"colour":1}]"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), "config_invalid");
        assert!(e.to_string().contains("colour"), "{e}");
        let e = Config::from_sources_json(r#"[{"name":"a","write_key":"k"}]"#).unwrap_err();
        assert!(e.to_string().contains("allowed_origins"), "{e}");
        let e = Config::from_sources_json(
            r#"[{"name":"a","write_key":"k","allowed_origins":[],"tracking_plan":{"name":"p","violations":"nope"}}]"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), "config_invalid");
        let e = Config::from_sources_json(
            r#"[{"name":"a","write_key":"k","allowed_origins":[]},{"name":"b","write_key":"k","allowed_origins":[]}]"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), "config_duplicate");
        let e = Config::from_vars("[]", Some("sluice"), None).unwrap_err();
        assert!(e.to_string().contains("SLUICE_SDK_PATH"));
    }

    #[test]
    fn origins_match_exactly_by_wildcard_or_star() {
        assert!(origin_matches(
            "https://shop.example.com",
            "https://shop.example.com"
        ));
        assert!(!origin_matches(
            "https://shop.example.com",
            "http://shop.example.com"
        ));
        assert!(origin_matches(
            "https://*.example.com",
            "https://a.b.example.com"
        ));
        assert!(!origin_matches(
            "https://*.example.com",
            "https://example.com.evil.net"
        ));
        assert!(!origin_matches(
            "https://*.example.com",
            "https://evilexample.com"
        ));
        assert!(origin_matches("*", "https://anything.net"));
    }
}
