//! Campaign attribution: `utm_*` parameters and ad click ids.

use super::url::query_pairs;
use serde_json::{Map, Value};

pub use crate::campaign::{utm_key, CLICK_IDS};

/// `context.campaign` from the page URL: `{source, medium, name, term, content, clickIds}`.
/// Empty when the URL carries no campaign parameters.
pub fn from_url(url: &str) -> Map<String, Value> {
    let mut campaign = Map::new();
    let mut clicks = Map::new();
    for (k, v) in query_pairs(url) {
        let k = k.to_ascii_lowercase();
        if v.is_empty() {
            continue;
        }
        if let Some(key) = utm_key(&k) {
            campaign.entry(key).or_insert(Value::from(v));
        } else if CLICK_IDS.contains(&k.as_str()) {
            clicks.entry(k).or_insert(Value::from(v));
        }
    }
    if !clicks.is_empty() {
        campaign.insert("clickIds".into(), Value::Object(clicks));
    }
    campaign
}

/// Complete an existing `context.campaign` with what the URL says; what the client sent wins.
pub fn merge(existing: &mut Map<String, Value>, from_url: Map<String, Value>) {
    for (k, v) in from_url {
        existing.entry(k).or_insert(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_utm_parameters_and_click_ids() {
        let c = from_url("https://shop.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=spring%20sale&gclid=abc&fbclid=&MSCLKID=m1");
        assert_eq!(
            Value::Object(c),
            json!({"source":"newsletter","medium":"email","name":"spring sale","clickIds":{"gclid":"abc","msclkid":"m1"}})
        );
        assert!(from_url("https://shop.example.com/?q=1").is_empty());
    }

    #[test]
    fn the_clients_campaign_wins() {
        let mut existing = json!({"source":"app"}).as_object().cloned().unwrap();
        merge(
            &mut existing,
            from_url("https://x.com/?utm_source=web&utm_medium=cpc"),
        );
        assert_eq!(
            Value::Object(existing),
            json!({"source":"app","medium":"cpc"})
        );
    }
}
