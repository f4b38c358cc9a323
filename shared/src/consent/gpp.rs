//! IAB GPP: the US opt-outs of sale, sharing and targeted advertising, from
//! a CMP's `__gpp` data or (with the `iab` feature) from a GPP string.
//!
//! Opting out of sale or sharing denies `sale_sharing`; opting out of
//! targeted advertising denies `marketing`. "Did not opt out" grants them;
//! "not applicable" leaves them unknown.

use super::{Consent, Purpose, Source, State};
use alloc::string::String;
use alloc::vec::Vec;

/// What the GPP sections say about the US opt-outs (`None`: not applicable / absent).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GppSignals {
    pub sale_opt_out: Option<bool>,
    pub sharing_opt_out: Option<bool>,
    pub targeted_advertising_opt_out: Option<bool>,
    /// The GPC sub-section, where a section carries one.
    pub gpc: Option<bool>,
    /// Section ids present in the string.
    pub section_ids: Vec<u16>,
}

/// A GPP opt-out field: 0 not applicable, 1 opted out, 2 did not opt out.
pub fn opt_out_code(code: u8) -> Option<bool> {
    match code {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    }
}

fn combine(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), _) | (_, Some(false)) => Some(false),
        _ => None,
    }
}

impl GppSignals {
    /// Fold another section's signals in: an opt-out anywhere is an opt-out.
    pub fn merge(&mut self, other: &GppSignals) {
        self.merge_section([
            other.sale_opt_out,
            other.sharing_opt_out,
            other.targeted_advertising_opt_out,
            other.gpc,
        ]);
    }

    /// Fold one section's opt-outs of sale, sharing and targeted
    /// advertising, and its GPC, in (as [`GppSignals::merge`] does).
    pub fn merge_section(&mut self, section: [Option<bool>; 4]) {
        let [sale, sharing, targeted, gpc] = section;
        self.sale_opt_out = combine(self.sale_opt_out, sale);
        self.sharing_opt_out = combine(self.sharing_opt_out, sharing);
        self.targeted_advertising_opt_out = combine(self.targeted_advertising_opt_out, targeted);
        self.gpc = combine(self.gpc, gpc);
    }

    /// Sluice's consent from these signals (source `gpp`).
    pub fn to_consent(&self, gpp_string: Option<String>) -> Consent {
        let mut consent = Consent {
            source: Source::Gpp,
            gpp_string,
            gpc: self.gpc == Some(true),
            ..Consent::default()
        };
        let state = |o: Option<bool>| match o {
            Some(true) => State::Denied,
            Some(false) => State::Granted,
            None => State::Unknown,
        };
        consent.set(
            Purpose::SaleSharing,
            state(combine(self.sale_opt_out, self.sharing_opt_out)),
        );
        consent.set(Purpose::Marketing, state(self.targeted_advertising_opt_out));
        consent
    }
}

/// Decode a GPP string and fold every US section's opt-outs together.
/// Sections that fail to decode make the whole string invalid: an opt-out must
/// never be lost to a parse error.
#[cfg(feature = "iab")]
pub fn parse(gpp_string: &str) -> Result<GppSignals, super::ConsentError> {
    use iab_gpp::v1::GPPString;
    use std::str::FromStr;
    let err = |e: &dyn std::fmt::Display| super::ConsentError::Gpp(e.to_string());
    let gpp = GPPString::from_str(gpp_string.trim()).map_err(|e| err(&e))?;
    let mut signals = GppSignals {
        section_ids: gpp.section_ids().map(|id| *id as u16).collect(),
        ..GppSignals::default()
    };
    for section in gpp.decode_all_sections() {
        let section = section.map_err(|e| err(&e))?;
        let value = serde_json::to_value(&section).map_err(|e| err(&e))?;
        signals.merge(&signals_in(&value));
    }
    Ok(signals)
}

/// Find the opt-out fields anywhere in a decoded section.
#[cfg(feature = "iab")]
fn signals_in(value: &serde_json::Value) -> GppSignals {
    use serde_json::Value;
    let mut out = GppSignals::default();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let flag = match v.as_str() {
                        Some("OptedOut" | "Yes") => Some(true),
                        Some("DidNotOptOut" | "No") => Some(false),
                        _ => v.as_bool(),
                    };
                    let field = match k.as_str() {
                        "sale_opt_out" | "opt_out_sale" => &mut out.sale_opt_out,
                        "sharing_opt_out" => &mut out.sharing_opt_out,
                        "targeted_advertising_opt_out" => &mut out.targeted_advertising_opt_out,
                        "gpc" => &mut out.gpc,
                        _ => {
                            stack.push(v);
                            continue;
                        }
                    };
                    *field = combine(*field, flag);
                }
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_out_codes_follow_the_gpp_spec() {
        assert_eq!(opt_out_code(0), None);
        assert_eq!(opt_out_code(1), Some(true));
        assert_eq!(opt_out_code(2), Some(false));
    }

    #[test]
    fn an_opt_out_of_sale_or_sharing_denies_sale_sharing() {
        let s = GppSignals {
            sale_opt_out: Some(false),
            sharing_opt_out: Some(true),
            ..GppSignals::default()
        };
        let c = s.to_consent(None);
        assert_eq!(c.state(&Purpose::SaleSharing), State::Denied);
        assert_eq!(c.state(&Purpose::Marketing), State::Unknown);
        let s = GppSignals {
            sale_opt_out: Some(false),
            targeted_advertising_opt_out: Some(false),
            ..GppSignals::default()
        };
        let c = s.to_consent(None);
        assert_eq!(c.state(&Purpose::SaleSharing), State::Granted);
        assert_eq!(c.state(&Purpose::Marketing), State::Granted);
    }

    #[test]
    fn an_opt_out_in_any_section_wins() {
        let mut a = GppSignals {
            sale_opt_out: Some(false),
            ..GppSignals::default()
        };
        a.merge(&GppSignals {
            sale_opt_out: Some(true),
            ..GppSignals::default()
        });
        assert_eq!(a.sale_opt_out, Some(true));
    }

    #[cfg(feature = "iab")]
    #[test]
    fn decodes_us_privacy_and_tcf_sections() {
        // Header for section 6 (uspv1) and the string "1YYN": notice given, opted out of sale.
        let s = parse("DBABTA~1YYN").unwrap();
        assert_eq!(s.section_ids, [6]);
        assert_eq!(s.sale_opt_out, Some(true));
        assert_eq!(
            s.to_consent(None).state(&Purpose::SaleSharing),
            State::Denied
        );
        let s = parse("DBABTA~1YNN").unwrap();
        assert_eq!(s.sale_opt_out, Some(false));
        // A TCF EU section alone says nothing about US opt-outs.
        let s = parse("DBABM~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA").unwrap();
        assert_eq!(s.section_ids, [2]);
        assert_eq!(s.sale_opt_out, None);
    }

    /// Encode fields (value, bit width) as a GPP base64url section.
    #[cfg(feature = "iab")]
    fn encode(fields: &[(u32, u32)]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bits = String::new();
        for (value, width) in fields {
            bits.push_str(&format!("{value:0w$b}", w = *width as usize));
        }
        while !bits.len().is_multiple_of(6) {
            bits.push('0');
        }
        bits.as_bytes()
            .chunks(6)
            .map(|c| {
                ALPHABET[usize::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap()] as char
            })
            .collect()
    }

    /// A US-national (section 7) v1 core segment with the given opt-out codes.
    #[cfg(feature = "iab")]
    fn usnat(sale: u32, sharing: u32, targeted: u32) -> String {
        let mut fields = vec![(1, 6)]; // version
        fields.extend([(1, 2); 6]); // six notices: given
        fields.extend([(sale, 2), (sharing, 2), (targeted, 2)]);
        fields.extend([(0, 2); 12]); // sensitive data processing (v1: 12 fields)
        fields.extend([(0, 2); 2]); // known child sensitive data consents
        fields.push((0, 2)); // personal data consents
        fields.extend([(1, 2), (0, 2), (0, 2)]); // MSPA covered, opt-out mode, service provider mode
        format!("DBABLA~{}", encode(&fields))
    }

    #[cfg(feature = "iab")]
    #[test]
    fn decodes_us_national_opt_outs() {
        let s = parse(&usnat(1, 2, 1)).unwrap();
        assert_eq!(s.section_ids, [7]);
        assert_eq!(
            (
                s.sale_opt_out,
                s.sharing_opt_out,
                s.targeted_advertising_opt_out
            ),
            (Some(true), Some(false), Some(true))
        );
        let c = s.to_consent(None);
        assert_eq!(c.state(&Purpose::SaleSharing), State::Denied);
        assert_eq!(c.state(&Purpose::Marketing), State::Denied);
        let s = parse(&usnat(2, 2, 0)).unwrap();
        assert_eq!(
            (s.sale_opt_out, s.targeted_advertising_opt_out),
            (Some(false), None)
        );
        assert_eq!(
            s.to_consent(None).state(&Purpose::SaleSharing),
            State::Granted
        );
    }

    #[cfg(feature = "iab")]
    #[test]
    fn rejects_what_is_not_a_gpp_string() {
        for bad in ["", "~~~", "DBABTA~1YYN~extra", "not a gpp string"] {
            assert_eq!(
                parse(bad).unwrap_err().code(),
                "invalid_gpp_string",
                "{bad}"
            );
        }
    }
}
