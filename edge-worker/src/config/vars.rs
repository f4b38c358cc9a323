//! The whole configuration from the worker's vars: what each isolate reads
//! once (`platform`), and what `cargo xtask deploy` checks before a deploy
//! (`examples/check_config.rs`), so that a value the workers would refuse at
//! run time is refused before it ships.

use super::tuning::Tuning;
use super::{Config, ConfigError, COOKIE_DOMAIN_VAR, SDK_PATH_VAR, SOURCES_VAR};
use crate::admin::tokens::{self, TOKENS_VAR};
use crate::audience::AUDIENCES_VAR;
use crate::compact;
use crate::delivery::config::{self as destinations, Destination, DESTINATIONS_VAR};
use crate::delivery::dedup;
use crate::sinks::window::{self, HotWindow};

/// How `SLUICE_DESTINATIONS` is read: the destinations and their names.
pub type ReadDestinations = fn(Option<&str>) -> Result<(Vec<Destination>, Vec<String>), String>;

/// The backend's destinations: every field checked, as delivery uses them.
pub fn full_destinations(json: Option<&str>) -> Result<(Vec<Destination>, Vec<String>), String> {
    let dests = destinations::parse(json).map_err(|e| format!("{e} ({})", e.code()))?;
    let names = dests.iter().map(|d| d.name.clone()).collect();
    Ok((dests, names))
}

/// The collector's: only their names (for the audiences' references). It
/// delivers nothing, and the full reader (every vendor's settings) is a
/// tenth of its module; the backend, which delivers, checks the rest when
/// it runs, and while that fails events wait in the Queue (its consumers
/// retry them).
pub fn destination_names(json: Option<&str>) -> Result<(Vec<Destination>, Vec<String>), String> {
    let names = destinations::names(json).map_err(|e| format!("{e} ({})", e.code()))?;
    Ok((Vec::new(), names))
}

/// Every var [`load`] reads.
pub const VARS: &[&str] = &[
    SOURCES_VAR,
    SDK_PATH_VAR,
    COOKIE_DOMAIN_VAR,
    TOKENS_VAR,
    AUDIENCES_VAR,
    window::EVENTS_VAR,
    window::RETENTION_VAR,
    window::CAPACITY_VAR,
    dedup::SHARDS_VAR,
    dedup::WINDOW_VAR,
    compact::AFTER_VAR,
    DESTINATIONS_VAR,
];

/// Sources, admin tokens, audiences, D1's hot window and destinations from
/// `var` (a var's value, or `None` where it is not set), or the first error,
/// as text with its stable code in parentheses.
pub fn load(
    var: &dyn Fn(&str) -> Option<String>,
    read_destinations: ReadDestinations,
) -> Result<(Config, Vec<Destination>), String> {
    let json = var(SOURCES_VAR).ok_or_else(|| {
        let e = ConfigError::Missing(SOURCES_VAR);
        format!("{e} ({})", e.code())
    })?;
    let mut config = Config::from_vars(
        &json,
        var(SDK_PATH_VAR).as_deref(),
        var(COOKIE_DOMAIN_VAR).as_deref(),
    )
    .map_err(|e| format!("{e} ({})", e.code()))?;
    config.admin_tokens =
        tokens::parse(var(TOKENS_VAR).as_deref()).map_err(|e| format!("{e} ({})", e.code()))?;
    config.audiences = sluice_shared::audience::Catalog::parse(var(AUDIENCES_VAR).as_deref())
        .map_err(|e| format!("{AUDIENCES_VAR}: {e} ({})", e.code()))?;
    config.d1 = HotWindow::from_vars(
        var(window::EVENTS_VAR).as_deref(),
        var(window::RETENTION_VAR).as_deref(),
        var(window::CAPACITY_VAR).as_deref(),
    )
    .map_err(|e| format!("{e} ({})", e.code()))?;
    config.tuning = Tuning::from_vars(var).map_err(|e| format!("{e} ({})", e.code()))?;
    let (dests, names) = read_destinations(var(DESTINATIONS_VAR).as_deref())?;
    config
        .audiences
        .check_destinations(|name| names.iter().any(|n| n == name))
        .map_err(|e| format!("{AUDIENCES_VAR}: {e} ({})", e.code()))?;
    Ok((config, dests))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load_from(
        vars: &[(&str, &str)],
        read: ReadDestinations,
    ) -> Result<(Config, Vec<Destination>), String> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        load(&|name| map.get(name).map(|v| (*v).to_owned()), read)
    }

    const SOURCES: (&str, &str) = (
        SOURCES_VAR,
        r#"[{"name":"web","write_key":"wk","allowed_origins":[]}]"#,
    );

    #[test]
    fn every_var_is_read_and_the_first_error_names_its_code() {
        let webhook = r#"[{"name":"hook","kind":"webhook","url":"https://hooks.example.com/in","secret_var":"HOOK_SECRET"}]"#;
        let (config, dests) = load_from(
            &[
                SOURCES,
                (DESTINATIONS_VAR, webhook),
                (SDK_PATH_VAR, "/s/v2"),
            ],
            full_destinations,
        )
        .unwrap();
        assert_eq!(config.sources.len(), 1);
        assert_eq!(config.sdk_path, "/s/v2");
        assert_eq!(dests.len(), 1);
        let e = load_from(&[], full_destinations).unwrap_err();
        assert!(e.contains("(config_missing)"), "{e}");
        let e = load_from(&[SOURCES, (TOKENS_VAR, "{")], full_destinations).unwrap_err();
        assert!(e.ends_with(')') && e.contains(TOKENS_VAR), "{e}");
        let e = load_from(
            &[SOURCES, (window::RETENTION_VAR, "soon")],
            full_destinations,
        )
        .unwrap_err();
        assert!(e.contains(window::RETENTION_VAR), "{e}");
        let e = load_from(&[SOURCES, (dedup::SHARDS_VAR, "many")], full_destinations).unwrap_err();
        assert!(e.contains("(config_not_a_positive_number)"), "{e}");
    }

    /// The collector reads destination names only; the backend (and the
    /// deploy check, which reads as the backend does) every setting.
    #[test]
    fn a_bad_destination_setting_is_refused_by_the_full_reader_only() {
        let bad = r#"[{"name":"hook","kind":"webhook","url":"https://hooks.example.com/in","secret_var":"HOOK_SECRET","colour":1}]"#;
        let vars = [SOURCES, (DESTINATIONS_VAR, bad)];
        let e = load_from(&vars, full_destinations).unwrap_err();
        assert!(
            e.contains("colour") && e.contains("(destinations_invalid)"),
            "{e}"
        );
        assert!(load_from(&vars, destination_names).is_ok());
    }
}
