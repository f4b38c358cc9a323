//! Google Consent Mode v2 signals → Sluice's purposes.
//!
//! | signal | Sluice purpose |
//! | --- | --- |
//! | `analytics_storage` | analytics |
//! | `ad_storage`, `ad_user_data` | marketing |
//! | `ad_personalization`, `personalization_storage` | personalization |
//! | `functionality_storage` | functional |
//!
//! A purpose is granted when all its signals present are granted, denied when
//! any is denied, and unknown when none is present. `security_storage` is
//! necessary and needs no consent.

use super::{Consent, Purpose, Source, State};

const MAPPING: [(Purpose, &[&str]); 4] = [
    (Purpose::Analytics, &["analytics_storage"]),
    (Purpose::Marketing, &["ad_storage", "ad_user_data"]),
    (
        Purpose::Personalization,
        &["ad_personalization", "personalization_storage"],
    ),
    (Purpose::Functional, &["functionality_storage"]),
];

/// Consent from Consent Mode signals: `(signal, granted?)` pairs, e.g. from
/// `gtag('consent', 'update', {...})` or the data layer.
pub fn to_consent<'a>(signals: impl IntoIterator<Item = (&'a str, bool)> + Clone) -> Consent {
    let mut consent = Consent {
        source: Source::Gcm,
        ..Consent::default()
    };
    for (purpose, names) in MAPPING {
        let mut state = State::Unknown;
        for (name, granted) in signals.clone() {
            if names.contains(&name) {
                state = match (state, granted) {
                    (State::Denied, _) | (_, false) => State::Denied,
                    _ => State::Granted,
                };
            }
        }
        if state != State::Unknown {
            consent.set(purpose, state);
        }
    }
    consent
}

/// Read a Consent Mode value (`"granted"` / `"denied"`).
pub fn is_granted(value: &str) -> Option<bool> {
    match value {
        "granted" => Some(true),
        "denied" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_consent_mode_v2_signals() {
        let c = to_consent([
            ("analytics_storage", true),
            ("ad_storage", true),
            ("ad_user_data", false),
            ("ad_personalization", true),
        ]);
        assert_eq!(c.state(&Purpose::Analytics), State::Granted);
        assert_eq!(
            c.state(&Purpose::Marketing),
            State::Denied,
            "ad_user_data denied"
        );
        assert_eq!(c.state(&Purpose::Personalization), State::Granted);
        assert_eq!(c.state(&Purpose::Functional), State::Unknown, "no signal");
        assert_eq!(c.source, Source::Gcm);
    }

    #[test]
    fn reads_signal_values() {
        assert_eq!(is_granted("granted"), Some(true));
        assert_eq!(is_granted("denied"), Some(false));
        assert_eq!(is_granted("maybe"), None);
    }
}
