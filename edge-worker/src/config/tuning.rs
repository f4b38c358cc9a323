//! The delivery core's numeric settings: how many dedup shards, how long
//! they remember an id, and when an hour of the lake is compacted. A value
//! that is not a whole number (a positive one, but for the compaction
//! delay) is refused with the var's name (at deploy, by `cargo xtask
//! deploy`'s check, and by the workers, whose consumers then leave events
//! in the Queue), never read as the default.

use crate::compact;
use crate::delivery::dedup;
use std::fmt;

/// The numbers, defaults where a var is not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// `SLUICE_DEDUP_SHARDS`.
    pub dedup_shards: u32,
    /// `SLUICE_DEDUP_WINDOW_S`.
    pub dedup_window_s: u64,
    /// `SLUICE_COMPACT_AFTER_S`.
    pub compact_after_s: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            dedup_shards: dedup::DEFAULT_SHARDS,
            dedup_window_s: dedup::DEFAULT_WINDOW_S,
            compact_after_s: compact::DEFAULT_AFTER_S,
        }
    }
}

/// A var that is set but not a whole number in range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TuningError {
    NotAPositiveNumber { var: &'static str, value: String },
    NotAWholeNumber { var: &'static str, value: String },
}

impl TuningError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TuningError::NotAPositiveNumber { .. } => "config_not_a_positive_number",
            TuningError::NotAWholeNumber { .. } => "config_not_a_whole_number",
        }
    }
}

impl fmt::Display for TuningError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TuningError::NotAPositiveNumber { var, value } => {
                write!(f, "{var} must be a positive whole number, got {value:?}")
            }
            TuningError::NotAWholeNumber { var, value } => {
                write!(f, "{var} must be a whole number, got {value:?}")
            }
        }
    }
}

/// `value` of `var` as a positive number, `default` where it is not set.
pub fn positive<N: std::str::FromStr + Default + PartialEq>(
    var: &'static str,
    value: Option<&str>,
    default: N,
) -> Result<N, TuningError> {
    let Some(v) = value else {
        return Ok(default);
    };
    v.trim()
        .parse::<N>()
        .ok()
        .filter(|n| *n != N::default())
        .ok_or_else(|| TuningError::NotAPositiveNumber {
            var,
            value: v.to_owned(),
        })
}

/// `value` of `var` as a whole number (0 allowed), `default` where it is not set.
pub fn whole(var: &'static str, value: Option<&str>, default: u64) -> Result<u64, TuningError> {
    let Some(v) = value else {
        return Ok(default);
    };
    v.trim().parse().map_err(|_| TuningError::NotAWholeNumber {
        var,
        value: v.to_owned(),
    })
}

impl Tuning {
    /// From `var` (a var's value, or `None` where it is not set).
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Tuning, TuningError> {
        let d = Tuning::default();
        Ok(Tuning {
            dedup_shards: positive(
                dedup::SHARDS_VAR,
                var(dedup::SHARDS_VAR).as_deref(),
                d.dedup_shards,
            )?,
            dedup_window_s: positive(
                dedup::WINDOW_VAR,
                var(dedup::WINDOW_VAR).as_deref(),
                d.dedup_window_s,
            )?,
            compact_after_s: whole(
                compact::AFTER_VAR,
                var(compact::AFTER_VAR).as_deref(),
                d.compact_after_s,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<Tuning, TuningError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        Tuning::from_vars(&|name| map.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn unset_vars_are_the_defaults_and_set_ones_are_read() {
        assert_eq!(from(&[]).unwrap(), Tuning::default());
        let t = from(&[
            (dedup::SHARDS_VAR, " 16 "),
            (dedup::WINDOW_VAR, "3600"),
            (compact::AFTER_VAR, "60"),
        ])
        .unwrap();
        assert_eq!(
            t,
            Tuning {
                dedup_shards: 16,
                dedup_window_s: 3600,
                compact_after_s: 60
            }
        );
    }

    #[test]
    fn a_value_that_is_not_a_positive_number_is_refused_with_its_var() {
        for (var, value) in [
            (dedup::SHARDS_VAR, "four"),
            (dedup::SHARDS_VAR, "0"),
            (dedup::SHARDS_VAR, "-4"),
            (dedup::SHARDS_VAR, "99999999999"),
            (dedup::WINDOW_VAR, "7d"),
            (dedup::WINDOW_VAR, ""),
        ] {
            let e = from(&[(var, value)]).unwrap_err();
            assert_eq!(
                e,
                TuningError::NotAPositiveNumber {
                    var,
                    value: value.to_owned()
                }
            );
            assert_eq!(e.code(), "config_not_a_positive_number");
            assert!(e.to_string().contains(var), "{e}");
        }
        // The compaction delay may be 0 (at once), not negative or a fraction.
        assert_eq!(
            from(&[(compact::AFTER_VAR, "0")]).unwrap().compact_after_s,
            0
        );
        for value in ["-1", "2.5", "soon"] {
            let e = from(&[(compact::AFTER_VAR, value)]).unwrap_err();
            assert_eq!(e.code(), "config_not_a_whole_number", "{value}");
            assert!(e.to_string().contains(compact::AFTER_VAR), "{e}");
        }
    }
}
