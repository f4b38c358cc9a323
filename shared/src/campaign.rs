//! Campaign attribution names shared by the SDK and the collector: the
//! `utm_*` parameters and the ad platforms' click ids.

/// Click-id parameters of the common ad platforms.
pub const CLICK_IDS: [&str; 14] = [
    "gclid",
    "gbraid",
    "wbraid",
    "dclid",
    "fbclid",
    "msclkid",
    "ttclid",
    "twclid",
    "li_fat_id",
    "epik",
    "rdt_cid",
    "sccid",
    "yclid",
    "irclickid",
];

/// `utm_x` → Segment's `context.campaign` key.
pub fn utm_key(param: &str) -> Option<&'static str> {
    Some(match param {
        "utm_source" => "source",
        "utm_medium" => "medium",
        "utm_campaign" => "name",
        "utm_term" => "term",
        "utm_content" => "content",
        "utm_id" => "id",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utm_parameters_map_to_segment_keys() {
        assert_eq!(utm_key("utm_campaign"), Some("name"));
        assert_eq!(utm_key("utm_nope"), None);
        assert!(CLICK_IDS.contains(&"gclid"));
    }
}
