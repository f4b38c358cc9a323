//! Destinations, read once per isolate from `SLUICE_DESTINATIONS` (JSON array;
//! unknown fields rejected). Sources name the destinations they feed
//! (`"destinations": ["lake", "crm-hook"]`); D1 is always written.

use serde::Deserialize;
use sluice_shared::consent::Purpose;
use std::fmt;

/// Run `$body` with `D` bound to the vendor type of a catalogue `Kind` and
/// `v` to its settings, or evaluate `$other` for the built-in sinks.
macro_rules! with_vendor {
    ($kind:expr, |$d:ident, $v:ident| $body:expr, $other:expr) => {{
        use sluice_shared::dest::*;
        use $crate::delivery::config::Kind;
        match $kind {
            Kind::MetaCapi($v) => {
                type $d = meta::Meta;
                $body
            }
            Kind::Ga4($v) => {
                type $d = ga4::Ga4;
                $body
            }
            Kind::GoogleAds($v) => {
                type $d = google_ads::GoogleAds;
                $body
            }
            Kind::Tiktok($v) => {
                type $d = tiktok::TikTok;
                $body
            }
            Kind::Mixpanel($v) => {
                type $d = mixpanel::Mixpanel;
                $body
            }
            Kind::Amplitude($v) => {
                type $d = amplitude::Amplitude;
                $body
            }
            Kind::Posthog($v) => {
                type $d = posthog::PostHog;
                $body
            }
            Kind::Braze($v) => {
                type $d = braze::Braze;
                $body
            }
            Kind::R2 { .. } | Kind::Webhook { .. } | Kind::Clickhouse { .. } => $other,
        }
    }};
}
pub(crate) use with_vendor;

/// Var holding the destinations.
pub const DESTINATIONS_VAR: &str = "SLUICE_DESTINATIONS";

/// Retry schedule of a destination: exponential backoff, then the dead-letter store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Delay before the first retry.
    pub initial_delay_s: u32,
    /// Longest delay between retries.
    pub max_delay_s: u32,
    /// Attempts (the first included) before the batch is dead-lettered.
    pub max_attempts: u16,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            initial_delay_s: 2,
            max_delay_s: 300,
            max_attempts: 10,
        }
    }
}

impl Retry {
    /// Delay before the retry that follows failed attempt number `attempt` (1-based).
    pub fn delay_s(&self, attempt: u16) -> u32 {
        let exp = u32::from(attempt.saturating_sub(1)).min(20);
        self.initial_delay_s
            .saturating_mul(1u32 << exp)
            .min(self.max_delay_s)
    }
}

/// What kind of sink, with its settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// Gzip NDJSON objects in the R2 bucket bound as `LAKE`.
    R2 {
        /// Key prefix (`events` → `events/source=…/dt=…/hour=…/<batch>.parquet`).
        #[serde(default = "default_prefix")]
        prefix: String,
        /// `parquet` (gzip pages, the default) or `ndjson` (gzip NDJSON).
        #[serde(default)]
        format: LakeFormat,
    },
    /// A JSON batch POSTed with an HMAC-SHA256 signature.
    Webhook {
        url: String,
        /// Name of the var or secret holding the signing key.
        secret_var: String,
        #[serde(default = "default_timeout")]
        timeout_ms: u32,
    },
    /// ClickHouse over HTTP: `INSERT INTO <database>.<table> FORMAT JSONEachRow`.
    Clickhouse {
        url: String,
        #[serde(default = "default_database")]
        database: String,
        table: String,
        #[serde(default)]
        user: Option<String>,
        /// Name of the var or secret holding the password.
        #[serde(default)]
        password_var: Option<String>,
        #[serde(default = "default_timeout")]
        timeout_ms: u32,
    },
    /// Meta Conversions API.
    MetaCapi(VendorSettings),
    /// Google Analytics 4 Measurement Protocol.
    Ga4(VendorSettings),
    /// Google Ads click conversions and enhanced conversions.
    GoogleAds(VendorSettings),
    /// TikTok Events API.
    Tiktok(VendorSettings),
    /// Mixpanel `/import`.
    Mixpanel(VendorSettings),
    /// Amplitude HTTP V2.
    Amplitude(VendorSettings),
    /// PostHog `/batch`.
    Posthog(VendorSettings),
    /// Braze `/users/track`.
    Braze(VendorSettings),
}

/// How the lake writes its objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LakeFormat {
    /// `<batch>.ndjson.gz`: one JSON event per line, gzip.
    Ndjson,
    /// `<batch>.parquet`: columnar, gzip pages, typed timestamps (the default:
    /// what analysts' engines read without scanning every byte).
    #[default]
    Parquet,
}

/// A catalogue vendor's settings: its own config object (credentials as
/// `<field>_var` naming a secret, see [`crate::sinks::vendor`]) and the timeout.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VendorSettings {
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
}

impl Kind {
    /// The `kind` as written in `SLUICE_DESTINATIONS`.
    pub fn name(&self) -> &'static str {
        with_vendor!(
            self,
            |D, _v| <D as sluice_shared::dest::Destination>::KIND,
            match self {
                Kind::R2 { .. } => "r2",
                Kind::Webhook { .. } => "webhook",
                _ => "clickhouse",
            }
        )
    }

    /// The vendor settings, for a catalogue destination.
    pub fn vendor(&self) -> Option<&VendorSettings> {
        match self {
            Kind::MetaCapi(v)
            | Kind::Ga4(v)
            | Kind::GoogleAds(v)
            | Kind::Tiktok(v)
            | Kind::Mixpanel(v)
            | Kind::Amplitude(v)
            | Kind::Posthog(v)
            | Kind::Braze(v) => Some(v),
            Kind::R2 { .. } | Kind::Webhook { .. } | Kind::Clickhouse { .. } => None,
        }
    }

    /// The purposes an event always needs to go here: the vendor's own
    /// (advertising and engagement vendors `marketing`, analytics vendors
    /// `analytics`). A destination's `purposes` add to these, never remove them.
    pub fn default_purposes(&self) -> &'static [Purpose] {
        with_vendor!(
            self,
            |D, _v| <D as sluice_shared::dest::Destination>::PURPOSES,
            &[]
        )
    }
}

fn default_prefix() -> String {
    "events".into()
}
fn default_timeout() -> u32 {
    10_000
}
fn default_database() -> String {
    "default".into()
}

/// One destination. (Unknown fields are rejected by `check_fields`: serde
/// cannot do it through the flattened, tagged `kind`.)
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Destination {
    pub name: String,
    #[serde(flatten)]
    pub kind: Kind,
    /// Consent purposes an event needs to be sent here (e.g. `["marketing"]`).
    #[serde(default)]
    pub purposes: Vec<Purpose>,
    #[serde(default)]
    pub retry: Retry,
}

/// Why the destinations could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DestinationsError {
    Invalid(String),
    Duplicate(String),
}

impl DestinationsError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DestinationsError::Invalid(_) => "destinations_invalid",
            DestinationsError::Duplicate(_) => "destinations_duplicate",
        }
    }
}

impl fmt::Display for DestinationsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestinationsError::Invalid(why) => write!(f, "{DESTINATIONS_VAR} is invalid: {why}"),
            DestinationsError::Duplicate(name) => {
                write!(f, "{DESTINATIONS_VAR} repeats the name `{name}`")
            }
        }
    }
}

/// Parse `SLUICE_DESTINATIONS` (absent or empty means none).
pub fn parse(json: Option<&str>) -> Result<Vec<Destination>, DestinationsError> {
    let Some(json) = json.map(str::trim).filter(|j| !j.is_empty()) else {
        return Ok(Vec::new());
    };
    // The flattened `kind` tag makes serde's own unknown-field check unreliable,
    // so fields are checked against each kind's list first.
    let raw: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| DestinationsError::Invalid(e.to_string()))?;
    for d in &raw {
        check_fields(d)?;
    }
    let mut list: Vec<Destination> =
        serde_json::from_str(json).map_err(|e| DestinationsError::Invalid(e.to_string()))?;
    for d in &mut list {
        for p in d.kind.default_purposes() {
            if !d.purposes.contains(p) {
                d.purposes.push(p.clone());
            }
        }
        with_vendor!(
            &d.kind,
            |D, v| crate::sinks::vendor::check_settings::<D>(&v.settings),
            Ok(())
        )
        .map_err(|e| DestinationsError::Invalid(format!("`{}`: {e}", d.name)))?;
    }
    for (i, d) in list.iter().enumerate() {
        if d.name.is_empty() || d.name == "d1" {
            return Err(DestinationsError::Invalid(format!(
                "destination #{i} needs a name other than `d1`"
            )));
        }
        if list[..i].iter().any(|o| o.name == d.name) {
            return Err(DestinationsError::Duplicate(d.name.clone()));
        }
        if d.retry.max_attempts == 0 || d.retry.initial_delay_s == 0 {
            return Err(DestinationsError::Invalid(format!(
                "`{}`: retry needs max_attempts and initial_delay_s ≥ 1",
                d.name
            )));
        }
    }
    Ok(list)
}

/// Only the names in `SLUICE_DESTINATIONS` (absent or empty means none),
/// for a worker that delivers nothing (the collector): a JSON array of
/// objects, each with a unique non-empty `name` other than `d1`. The rest of
/// each destination is [`parse`]'s to check.
pub fn names(json: Option<&str>) -> Result<Vec<String>, DestinationsError> {
    let Some(json) = json.map(str::trim).filter(|j| !j.is_empty()) else {
        return Ok(Vec::new());
    };
    let raw: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| DestinationsError::Invalid(e.to_string()))?;
    let mut names: Vec<String> = Vec::with_capacity(raw.len());
    for (i, d) in raw.iter().enumerate() {
        let name = d
            .get("name")
            .and_then(serde_json::Value::as_str)
            .filter(|n| !n.is_empty() && *n != "d1")
            .ok_or_else(|| {
                DestinationsError::Invalid(format!("destination #{i} needs a name other than `d1`"))
            })?;
        if names.iter().any(|n| n == name) {
            return Err(DestinationsError::Duplicate(name.to_owned()));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

fn check_fields(d: &serde_json::Value) -> Result<(), DestinationsError> {
    let common = ["name", "kind", "purposes", "retry"];
    let specific: &[&str] = match d.get("kind").and_then(|k| k.as_str()) {
        Some("r2") => &["prefix", "format"],
        Some("webhook") => &["url", "secret_var", "timeout_ms"],
        Some("clickhouse") => &[
            "url",
            "database",
            "table",
            "user",
            "password_var",
            "timeout_ms",
        ],
        Some(
            "meta_capi" | "ga4" | "google_ads" | "tiktok" | "mixpanel" | "amplitude" | "posthog"
            | "braze",
        ) => &["settings", "timeout_ms"],
        _ => return Ok(()), // serde reports the bad or missing kind
    };
    if let Some(map) = d.as_object() {
        if let Some(unknown) = map
            .keys()
            .find(|k| !common.contains(&k.as_str()) && !specific.contains(&k.as_str()))
        {
            return Err(DestinationsError::Invalid(format!(
                "unknown field `{unknown}`"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_kind() {
        let list = parse(Some(
            r#"[{"name":"lake","kind":"r2"},
                {"name":"hook","kind":"webhook","url":"http://127.0.0.1:9/h","secret_var":"HOOK_SECRET","purposes":["marketing"]},
                {"name":"ch","kind":"clickhouse","url":"http://127.0.0.1:8123","table":"events","retry":{"initial_delay_s":1,"max_delay_s":4,"max_attempts":3}}]"#,
        ))
        .unwrap();
        assert_eq!(
            list[0].kind,
            Kind::R2 {
                prefix: "events".into(),
                format: LakeFormat::Parquet
            },
            "Parquet unless told otherwise"
        );
        assert_eq!(list[1].purposes, vec![Purpose::Marketing]);
        assert_eq!(list[2].retry.max_attempts, 3);
        assert!(parse(None).unwrap().is_empty());
    }

    #[test]
    fn bad_destinations_fail_loudly() {
        assert_eq!(
            parse(Some(r#"[{"name":"x","kind":"ftp"}]"#))
                .unwrap_err()
                .code(),
            "destinations_invalid"
        );
        let e = parse(Some(r#"[{"name":"x","kind":"r2","bucket":"b"}]"#)).unwrap_err();
        assert!(e.to_string().contains("bucket"), "{e}");
        assert_eq!(
            parse(Some(
                r#"[{"name":"x","kind":"r2"},{"name":"x","kind":"r2"}]"#
            ))
            .unwrap_err()
            .code(),
            "destinations_duplicate"
        );
        assert!(
            parse(Some(r#"[{"name":"h","kind":"webhook","url":"u"}]"#)).is_err(),
            "secret_var is required"
        );
    }

    #[test]
    fn the_collectors_names_only_reading_agrees_with_the_full_one_on_names() {
        let json = r#"[{"name":"lake","kind":"r2"},{"name":"hook","kind":"webhook","url":"http://127.0.0.1:9/h","secret_var":"S"}]"#;
        let full: Vec<String> = parse(Some(json))
            .unwrap()
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(names(Some(json)).unwrap(), full);
        assert!(names(None).unwrap().is_empty());
        assert!(names(Some("  ")).unwrap().is_empty());
        for (bad, code) in [
            ("{}", "destinations_invalid"),
            (r#"[{"kind":"r2"}]"#, "destinations_invalid"),
            (r#"[{"name":"d1","kind":"r2"}]"#, "destinations_invalid"),
            (r#"[{"name":""}]"#, "destinations_invalid"),
            (
                r#"[{"name":"x","kind":"r2"},{"name":"x","kind":"r2"}]"#,
                "destinations_duplicate",
            ),
        ] {
            assert_eq!(names(Some(bad)).unwrap_err().code(), code, "{bad}");
            assert_eq!(parse(Some(bad)).unwrap_err().code(), code, "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = Retry {
            initial_delay_s: 2,
            max_delay_s: 30,
            max_attempts: 10,
        };
        let delays: Vec<u32> = (1..=6).map(|a| r.delay_s(a)).collect();
        assert_eq!(delays, [2, 4, 8, 16, 30, 30]);
    }
}
