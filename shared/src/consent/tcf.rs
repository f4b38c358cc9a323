//! IAB TCF v2: map TCF purposes 1–11 to Sluice's purposes, and (with the
//! `iab` feature) decode TC strings.
//!
//! Mapping (a Sluice purpose is granted when every TCF purpose mapped to it is
//! established, by consent or — where TCF allows it — legitimate interest):
//!
//! | TCF purpose | meaning | Sluice purpose |
//! | --- | --- | --- |
//! | 1 | store and/or access information on a device | functional |
//! | 2, 3, 4, 7 | select ads, ad profiles, personalised ads, measure ads | marketing |
//! | 5, 6, 11 | content profiles, personalised content, limited-data content | personalization |
//! | 8, 9, 10 | measure content, audience statistics, develop and improve | analytics |
//!
//! Purposes 1, 3, 4, 5 and 6 cannot rest on legitimate interest (TCF 2.2).

use super::{Consent, Purpose, Source, State};
use alloc::string::String;
use alloc::vec::Vec;

/// The signals of a TCF v2 consent, as `__tcfapi` reports them or a TC string encodes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcfSignals {
    /// TCF purposes (1–24) with the visitor's consent.
    pub purpose_consents: Vec<u16>,
    /// TCF purposes established by legitimate interest (not objected to).
    pub purpose_legitimate_interests: Vec<u16>,
    /// Vendors with consent.
    pub vendor_consents: Vec<u16>,
    pub cmp_id: u16,
    pub cmp_version: u16,
    pub vendor_list_version: u16,
    pub policy_version: u8,
    pub publisher_country_code: String,
}

const MAPPING: [(Purpose, &[u16]); 4] = [
    (Purpose::Functional, &[1]),
    (Purpose::Marketing, &[2, 3, 4, 7]),
    (Purpose::Personalization, &[5, 6, 11]),
    (Purpose::Analytics, &[8, 9, 10]),
];

/// TCF purposes that may rest on legitimate interest, as bits (bit `i`:
/// purpose `i`): 2, 7, 8, 9, 10, 11.
const LI_ALLOWED: u32 = 1 << 2 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 10 | 1 << 11;

/// TCF purposes as bits (bit `i`: purpose `i`; those above 31 are not
/// mapped to any Sluice purpose, so they are left out).
fn bits(purposes: &[u16]) -> u32 {
    let mut bits = 0;
    for p in purposes {
        bits |= 1u32.checked_shl(u32::from(*p)).unwrap_or(0);
    }
    bits
}

/// Sluice's consent (source `tcf`) from the TCF purposes with consent and
/// those established by legitimate interest, as bits (bit `i`: purpose
/// `i`), as a CMP's `tcData` gives them; `policy_version` is TCF's.
pub fn consent_from_bits(
    consents: u32,
    interests: u32,
    policy_version: u8,
    tc_string: Option<String>,
) -> Consent {
    let established = consents | (interests & LI_ALLOWED);
    let mut consent = Consent {
        source: Source::Tcf,
        policy_version: Some({
            let mut v = String::from("tcf-v2.");
            crate::text::push_decimal(&mut v, u64::from(policy_version), 1);
            v
        }),
        tc_string,
        ..Consent::default()
    };
    for (purpose, tcf) in MAPPING {
        let needed = bits(tcf);
        consent.set(
            purpose,
            if established & needed == needed {
                State::Granted
            } else {
                State::Denied
            },
        );
    }
    consent
}

impl TcfSignals {
    /// Sluice's consent from these signals (source `tcf`).
    pub fn to_consent(&self, tc_string: Option<String>) -> Consent {
        consent_from_bits(
            bits(&self.purpose_consents),
            bits(&self.purpose_legitimate_interests),
            self.policy_version,
            tc_string,
        )
    }
}

/// Decode a TC string's core segment.
#[cfg(feature = "iab")]
pub fn parse(tc_string: &str) -> Result<TcfSignals, super::ConsentError> {
    use iab_gpp::sections::tcfeuv2::TcfEuV2;
    use std::str::FromStr;
    let tc =
        TcfEuV2::from_str(tc_string.trim()).map_err(|e| super::ConsentError::Tcf(e.to_string()))?;
    let core = tc.core;
    Ok(TcfSignals {
        purpose_consents: core.purpose_consents.into_iter().collect(),
        purpose_legitimate_interests: core.purpose_legitimate_interests.into_iter().collect(),
        vendor_consents: core.vendor_consents.into_iter().collect(),
        cmp_id: core.cmp_id,
        cmp_version: core.cmp_version,
        vendor_list_version: core.vendor_list_version,
        policy_version: core.policy_version,
        publisher_country_code: core.publisher_country_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_tcf_purposes_to_sluice_purposes() {
        let all = TcfSignals {
            purpose_consents: (1..=11).collect(),
            ..TcfSignals::default()
        };
        let c = all.to_consent(None);
        for p in [
            Purpose::Functional,
            Purpose::Marketing,
            Purpose::Personalization,
            Purpose::Analytics,
        ] {
            assert_eq!(c.state(&p), State::Granted, "{p}");
        }
        assert_eq!(c.source, Source::Tcf);

        let analytics_only = TcfSignals {
            purpose_consents: vec![1, 8, 9, 10],
            ..TcfSignals::default()
        };
        let c = analytics_only.to_consent(None);
        assert_eq!(c.state(&Purpose::Analytics), State::Granted);
        assert_eq!(c.state(&Purpose::Functional), State::Granted);
        assert_eq!(c.state(&Purpose::Marketing), State::Denied);
        assert_eq!(c.state(&Purpose::Personalization), State::Denied);
    }

    #[test]
    fn purposes_as_bits_map_as_the_signals_do() {
        // Consent for 1, 8 (bits 1, 8); 9 and 10 by legitimate interest;
        // 3 by legitimate interest, which purpose 3 cannot rest on.
        let c = consent_from_bits(1 << 1 | 1 << 8, 1 << 9 | 1 << 10 | 1 << 3, 4, None);
        assert_eq!(c.state(&Purpose::Analytics), State::Granted);
        assert_eq!(c.state(&Purpose::Functional), State::Granted);
        assert_eq!(c.state(&Purpose::Marketing), State::Denied);
        assert_eq!(c.policy_version.as_deref(), Some("tcf-v2.4"));
        let signals = TcfSignals {
            purpose_consents: vec![1, 8, 40],
            purpose_legitimate_interests: vec![9, 10, 3],
            policy_version: 4,
            ..TcfSignals::default()
        };
        assert_eq!(signals.to_consent(None), c, "purpose 40 is not mapped");
    }

    #[test]
    fn legitimate_interest_counts_only_where_tcf_allows_it() {
        let li = TcfSignals {
            purpose_legitimate_interests: (1..=11).collect(),
            ..TcfSignals::default()
        };
        let c = li.to_consent(None);
        assert_eq!(
            c.state(&Purpose::Analytics),
            State::Granted,
            "8, 9, 10 may rest on LI"
        );
        assert_eq!(
            c.state(&Purpose::Functional),
            State::Denied,
            "purpose 1 needs consent"
        );
        assert_eq!(
            c.state(&Purpose::Marketing),
            State::Denied,
            "3 and 4 need consent"
        );
    }

    // Published test strings with their decoded values (IAB TCF v2 core segment,
    // as used by the GDPR::IAB::TCFv2 test suite).
    #[cfg(feature = "iab")]
    #[test]
    fn decodes_a_bitfield_tc_string() {
        let s = parse(
            "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA",
        )
        .unwrap();
        assert_eq!(
            (
                s.cmp_id,
                s.cmp_version,
                s.vendor_list_version,
                s.policy_version
            ),
            (21, 7, 23, 2)
        );
        assert_eq!(s.purpose_consents, [1, 3, 9, 10]);
        assert_eq!(s.purpose_legitimate_interests, [3, 4, 5, 8, 9, 10]);
        assert_eq!(s.publisher_country_code, "KM");
        assert_eq!(
            s.vendor_consents,
            [
                2, 3, 6, 7, 8, 10, 12, 13, 14, 15, 16, 21, 25, 27, 30, 31, 34, 35, 37, 38, 39, 42,
                43, 49, 52, 54, 55, 56, 57, 59, 60, 63, 64, 65, 66, 67, 68, 69, 73, 74, 76, 78, 83,
                86, 87, 89, 90, 92, 96, 99, 100, 106, 109, 110, 114, 115
            ]
        );
        let c = s.to_consent(None);
        assert_eq!(
            c.state(&Purpose::Analytics),
            State::Granted,
            "9, 10 by consent, 8 by LI"
        );
        assert_eq!(c.state(&Purpose::Marketing), State::Denied);
    }

    #[cfg(feature = "iab")]
    #[test]
    fn decodes_a_range_encoded_tc_string() {
        let s = parse("COyfVVoOyfVVoADACHENAwCAAAAAAAAAAAAAE5QBgALgAqgD8AQACSwEygJyAnSAMABgAFkAgQCDASeAmYBOgAA").unwrap();
        assert_eq!((s.cmp_id, s.cmp_version, s.vendor_list_version), (3, 2, 48));
        assert!(s.purpose_consents.is_empty());
        assert_eq!(s.vendor_consents, [23, 42, 126, 127, 128, 587, 613, 626]);
        assert_eq!(s.publisher_country_code, "AA");
        assert_eq!(s.to_consent(None).state(&Purpose::Analytics), State::Denied);
    }

    #[cfg(feature = "iab")]
    #[test]
    fn rejects_what_is_not_a_tc_string() {
        for bad in ["", "not base64!", "AAAA"] {
            assert_eq!(parse(bad).unwrap_err().code(), "invalid_tc_string", "{bad}");
        }
    }
}
