//! Typed configuration, read once per isolate from the `SLUICE_SOURCES` var.

use serde::Deserialize;
use std::fmt;

/// Name of the var holding the sources as JSON.
pub const SOURCES_VAR: &str = "SLUICE_SOURCES";

/// One source: a site or app that sends events with its own write key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Stable name, stored with every event (`source` column).
    pub name: String,
    /// The public key the SDK sends; it can only ingest.
    pub write_key: String,
}

/// The whole worker configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub sources: Vec<Source>,
}

/// Why the configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The var is not set.
    Missing(&'static str),
    /// The var is not valid JSON of the expected shape.
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
            ConfigError::Invalid(why) => write!(f, "{SOURCES_VAR} is invalid: {why}"),
            ConfigError::Duplicate(what) => write!(f, "{SOURCES_VAR} repeats {what}"),
        }
    }
}

impl Config {
    /// Parse the `SLUICE_SOURCES` JSON array.
    pub fn from_sources_json(json: &str) -> Result<Self, ConfigError> {
        let sources: Vec<Source> =
            serde_json::from_str(json).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        for (i, s) in sources.iter().enumerate() {
            if s.write_key.is_empty() || s.name.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "source #{i} needs a non-empty name and write_key"
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
        Ok(Config { sources })
    }

    /// The source this write key belongs to.
    pub fn source_by_write_key(&self, key: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.write_key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sources_and_finds_them_by_key() {
        let c = Config::from_sources_json(r#"[{"name":"web","write_key":"wk1"}]"#).unwrap();
        assert_eq!(c.source_by_write_key("wk1").unwrap().name, "web");
        assert!(c.source_by_write_key("nope").is_none());
    }

    #[test]
    fn unknown_fields_and_duplicates_fail_loudly() {
        let e =
            Config::from_sources_json(r#"[{"name":"a","write_key":"k","colour":1}]"#).unwrap_err();
        assert_eq!(e.code(), "config_invalid");
        assert!(e.to_string().contains("colour"), "{e}");
        let e = Config::from_sources_json(
            r#"[{"name":"a","write_key":"k"},{"name":"b","write_key":"k"}]"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), "config_duplicate");
    }
}
