//! Every vendor destination through one sink: the vendor's pure
//! [`Destination`] (in `sluice_shared::dest`) encodes — honouring the
//! event's `integrations` and the destination's `overrides` — and
//! classifies; this sends through the outbound-HTTP port. Adding a vendor
//! needs no code here.
//!
//! Credentials never sit in `SLUICE_DESTINATIONS`: a setting named
//! `<field>_var` names the secret that holds `<field>`
//! (`"access_token_var": "META_ACCESS_TOKEN"`), resolved at delivery time
//! by [`resolve_secrets`].

use super::{DeliveryBatch, Encoded, Part, Sink, SinkError};
use crate::ports::{HttpClient, PortError, Runtime};
use serde_json::{Map, Value};
use sluice_shared::dest::deletion::{Coded, Deletion};
use sluice_shared::dest::{Destination, HttpAnswer, HttpRequest, Verdict};
use sluice_shared::Timestamp;
use std::cell::RefCell;
use std::collections::HashMap;
use std::marker::PhantomData;

/// A vendor destination, configured.
pub struct Vendor<'a, D: Destination, H> {
    pub http: &'a H,
    pub config: D::Config,
    pub timeout_ms: u32,
    pub vendor: PhantomData<D>,
}

impl<'a, D: Destination, H> Vendor<'a, D, H> {
    /// The vendor's config from its settings, secrets resolved.
    pub fn new(
        http: &'a H,
        settings: &Map<String, Value>,
        secrets: &impl Runtime,
        timeout_ms: u32,
    ) -> Result<Self, SinkError> {
        let resolved = resolve_secrets(settings, secrets)?;
        let config = serde_json::from_value(Value::Object(resolved)).map_err(|e| {
            SinkError::Permanent(format!("the {} settings are invalid: {e}", D::NAME))
        })?;
        Ok(Vendor {
            http,
            config,
            timeout_ms,
            vendor: PhantomData,
        })
    }
}

/// Replace every `<field>_var: "NAME"` with `<field>: <secret NAME>`.
pub fn resolve_secrets(
    settings: &Map<String, Value>,
    secrets: &impl Runtime,
) -> Result<Map<String, Value>, SinkError> {
    let mut out = Map::new();
    for (key, value) in settings {
        match (key.strip_suffix("_var"), value.as_str()) {
            (Some(field), Some(name)) => {
                let secret = secrets.secret(name).ok_or_else(|| {
                    SinkError::Permanent(format!("the secret `{name}` is not set"))
                })?;
                out.insert(field.to_owned(), Value::String(secret));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(out)
}

/// Secrets as a deployment check sees them: every one present.
struct Placeholders;

impl Runtime for Placeholders {
    fn now(&self) -> Timestamp {
        Timestamp(0)
    }
    fn secret(&self, _name: &str) -> Option<String> {
        Some("placeholder".into())
    }
    fn new_uuid(&self) -> String {
        String::new()
    }
}

/// Whether a vendor's settings are valid, every secret present (checked
/// once with the configuration, so a typo fails loudly at start-up, not at
/// delivery).
pub fn check_settings<D: Destination>(settings: &Map<String, Value>) -> Result<(), SinkError> {
    struct NoHttp;
    impl HttpClient for NoHttp {
        async fn send(&self, _: &HttpRequest, _: u32) -> Result<HttpAnswer, PortError> {
            Err(PortError::Rejected("not sent".into()))
        }
    }
    let mut settings = settings.clone();
    if D::KIND == "google_ads"
        && !settings.contains_key("access_token")
        && !settings.contains_key("access_token_var")
    {
        // Refreshed at delivery (`google_ads_settings`): check the rest.
        for k in ["client_id", "client_secret", "refresh_token"] {
            let given = settings
                .remove(k)
                .or_else(|| settings.remove(&[k, "_var"].concat()));
            if given.is_none() {
                return Err(SinkError::Permanent(format!(
                    "Google Ads needs access_token, or client_id, client_secret and refresh_token (no {k})"
                )));
            }
        }
        settings.insert("access_token".into(), Value::String("placeholder".into()));
    }
    Vendor::<D, _>::new(&NoHttp, &settings, &Placeholders, 0).map(|_| ())
}

/// Access tokens an isolate exchanged, by OAuth client and refresh token,
/// each with when it expires: reused until a minute before that.
#[derive(Debug, Default)]
pub struct TokenCache(HashMap<String, (String, i64)>);

/// How long before its expiry a cached token is no longer used.
pub const TOKEN_MARGIN_MS: i64 = 60_000;

impl TokenCache {
    pub fn get(&self, key: &str, now_ms: i64) -> Option<&str> {
        self.0
            .get(key)
            .filter(|(_, expires)| now_ms < expires - TOKEN_MARGIN_MS)
            .map(|(token, _)| token.as_str())
    }

    pub fn put(&mut self, key: String, token: String, expires_ms: i64) {
        self.0.insert(key, (token, expires_ms));
    }
}

thread_local! {
    /// This isolate's Google Ads access tokens.
    static GOOGLE_TOKENS: RefCell<TokenCache> = RefCell::new(TokenCache::default());
}

/// Google Ads settings with a fresh OAuth access token: when the settings
/// carry `client_id`, `client_secret` and `refresh_token` (each usually a
/// `<field>_var` secret) instead of an `access_token`, the token is
/// exchanged at Google's OAuth endpoint, once per isolate until it is
/// about to expire (`TokenCache`).
pub async fn google_ads_settings<H: HttpClient>(
    http: &H,
    settings: &Map<String, Value>,
    secrets: &impl Runtime,
    timeout_ms: u32,
) -> Result<Map<String, Value>, SinkError> {
    use sluice_shared::dest::google_ads;
    let mut resolved = resolve_secrets(settings, secrets)?;
    if resolved.contains_key("access_token") {
        return Ok(resolved);
    }
    let mut take = |k: &str| {
        resolved
            .remove(k)
            .and_then(|v| v.as_str().map(str::to_owned))
    };
    let (Some(id), Some(secret), Some(refresh)) = (
        take("client_id"),
        take("client_secret"),
        take("refresh_token"),
    ) else {
        return Err(SinkError::Permanent(
            "Google Ads needs an access_token, or client_id, client_secret and refresh_token"
                .into(),
        ));
    };
    let key = [id.as_str(), "\n", refresh.as_str()].concat();
    let now_ms = secrets.now().0;
    let cached = GOOGLE_TOKENS.with(|c| c.borrow().get(&key, now_ms).map(str::to_owned));
    if let Some(token) = cached {
        resolved.insert("access_token".into(), Value::String(token));
        return Ok(resolved);
    }
    let answer = http
        .send(
            &google_ads::token_request(&id, &secret, &refresh),
            timeout_ms,
        )
        .await
        .map_err(|e| SinkError::port("Google OAuth token request", &e))?;
    match google_ads::token_from_answer(&answer) {
        Ok(token) => {
            let expires_ms =
                now_ms.saturating_add((token.expires_in_secs as i64).saturating_mul(1000));
            GOOGLE_TOKENS.with(|c| c.borrow_mut().put(key, token.token.clone(), expires_ms));
            resolved.insert("access_token".into(), Value::String(token.token));
            Ok(resolved)
        }
        Err(e) if (500..600).contains(&answer.status) || answer.status == 429 => {
            Err(SinkError::Retryable {
                reason: format!("Google OAuth: {e}"),
                after_ms: answer.retry_after_ms,
            })
        }
        Err(e) => Err(SinkError::Permanent(format!("Google OAuth: {e}"))),
    }
}

/// Ask a vendor with a deletion API to delete `user_id` (a data-subject
/// deletion): the vendor's call through the outbound-HTTP port, and what its
/// answer means.
pub async fn delete_user<D: Deletion, H: HttpClient>(
    http: &H,
    settings: &Map<String, Value>,
    secrets: &impl Runtime,
    user_id: &str,
    timeout_ms: u32,
) -> Verdict {
    let vendor = match Vendor::<D, _>::new(http, settings, secrets, timeout_ms) {
        Ok(v) => v,
        Err(e) => return e.verdict(),
    };
    let request = match D::delete_request(&vendor.config, user_id) {
        Ok(r) => r,
        Err(e) => {
            return Verdict::Permanent {
                reason: [e.code(), ": ", &e.to_string()].concat(),
            }
        }
    };
    match http.send(&request, timeout_ms).await {
        Ok(answer) => D::classify_deletion(&answer),
        Err(e) => SinkError::port("deletion request failed", &e).verdict(),
    }
}

impl<D: Destination, H: HttpClient> Sink for Vendor<'_, D, H> {
    type Request = HttpRequest;
    type Answer = HttpAnswer;

    fn encode(
        &self,
        batch: &DeliveryBatch,
        now: Timestamp,
    ) -> Result<Encoded<HttpRequest>, SinkError> {
        let encoded = D::encode(&self.config, &batch.events, now.0);
        Ok(Encoded {
            parts: encoded
                .requests
                .into_iter()
                .map(|request| Part {
                    events: request.events.clone(),
                    request,
                })
                .collect(),
            skipped: encoded.skipped,
        })
    }

    async fn send(&self, request: &HttpRequest) -> Result<HttpAnswer, PortError> {
        self.http.send(request, self.timeout_ms).await
    }

    fn classify(
        &self,
        part: &Part<HttpRequest>,
        answer: Result<HttpAnswer, PortError>,
    ) -> Vec<Verdict> {
        match answer {
            Ok(answer) => {
                let verdicts = D::classify(&self.config, &part.request, &answer);
                if verdicts.len() == part.events.len() {
                    verdicts
                } else {
                    // A vendor answer we cannot map back per event: judge by status.
                    super::status_verdicts(&part.events, Ok(answer))
                }
            }
            Err(e) => super::all(
                &part.events,
                SinkError::port("request failed", &e).verdict(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_token_is_used_until_a_minute_before_it_expires() {
        let mut cache = TokenCache::default();
        cache.put("client\nrefresh".into(), "ya29.a".into(), 3_600_000);
        assert_eq!(cache.get("client\nrefresh", 0), Some("ya29.a"));
        assert_eq!(cache.get("client\nrefresh", 3_540_000 - 1), Some("ya29.a"));
        assert_eq!(
            cache.get("client\nrefresh", 3_540_000),
            None,
            "within the margin"
        );
        assert_eq!(cache.get("client\nother", 0), None, "another refresh token");
    }
    use serde::Deserialize;
    use sluice_shared::consent::Purpose;
    use sluice_shared::dest::common::Overrides;
    use sluice_shared::dest::Limits;
    use sluice_shared::Event;

    /// A vendor that takes two events a request and rejects events named "bad".
    struct Toy;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ToyConfig {
        token: String,
        #[serde(default)]
        overrides: Overrides,
    }

    impl Destination for Toy {
        const NAME: &'static str = "Toy";
        const KIND: &'static str = "toy";
        const PURPOSES: &'static [Purpose] = &[Purpose::Analytics];
        type Config = ToyConfig;

        fn overrides(config: &ToyConfig) -> &Overrides {
            &config.overrides
        }

        fn limits(_: &ToyConfig) -> Limits {
            Limits {
                max_events: 2,
                max_bytes: 1000,
            }
        }

        fn encode(
            config: &ToyConfig,
            events: &[Event],
            _now_ms: i64,
        ) -> sluice_shared::dest::Encoded {
            let requests = (0..events.len())
                .collect::<Vec<_>>()
                .chunks(2)
                .map(|c| HttpRequest {
                    method: "POST",
                    url: "http://127.0.0.1:9/toy".into(),
                    headers: vec![("authorization".into(), ["Bearer ", &config.token].concat())],
                    body: Vec::new(),
                    events: c.to_vec(),
                })
                .collect();
            sluice_shared::dest::Encoded {
                requests,
                skipped: Vec::new(),
            }
        }

        fn classify(_: &ToyConfig, request: &HttpRequest, answer: &HttpAnswer) -> Vec<Verdict> {
            request
                .events
                .iter()
                .map(|i| {
                    if answer.body.contains(&format!("bad:{i}")) {
                        Verdict::Permanent {
                            reason: "bad".into(),
                        }
                    } else {
                        Verdict::Delivered
                    }
                })
                .collect()
        }
    }

    struct Secrets;

    impl Runtime for Secrets {
        fn now(&self) -> Timestamp {
            Timestamp(0)
        }
        fn secret(&self, name: &str) -> Option<String> {
            (name == "TOY_TOKEN").then(|| "t0ken".to_owned())
        }
        fn new_uuid(&self) -> String {
            String::new()
        }
    }

    struct Http;

    impl HttpClient for Http {
        async fn send(&self, _r: &HttpRequest, _t: u32) -> Result<HttpAnswer, PortError> {
            Ok(HttpAnswer {
                status: 200,
                retry_after_ms: None,
                body: "bad:2".into(),
            })
        }
    }

    #[test]
    fn credentials_come_from_secrets_and_verdicts_from_the_vendor() {
        let settings = serde_json::json!({"token_var": "TOY_TOKEN"});
        let settings = settings.as_object().unwrap();
        let sink = Vendor::<Toy, _>::new(&Http, settings, &Secrets, 1000).unwrap();
        assert_eq!(sink.config.token, "t0ken");
        let missing = serde_json::json!({"token_var": "NOPE"});
        assert!(matches!(
            Vendor::<Toy, _>::new(&Http, missing.as_object().unwrap(), &Secrets, 1000),
            Err(SinkError::Permanent(m)) if m.contains("NOPE")
        ));
        let unknown = serde_json::json!({"token": "x", "other": 1});
        assert!(
            Vendor::<Toy, _>::new(&Http, unknown.as_object().unwrap(), &Secrets, 1000).is_err()
        );
        let batch = DeliveryBatch {
            destination: "toy".into(),
            source: "web".into(),
            batch_id: "b".into(),
            attempt: 1,
            events: (0..3)
                .map(|i| Event::new(sluice_shared::EventType::Track, i.to_string()))
                .collect(),
        };
        let encoded = sink.encode(&batch, Timestamp(0)).unwrap();
        assert_eq!(encoded.parts.len(), 2);
        let report =
            crate::delivery::tests::block_on(super::super::write(&sink, &batch, Timestamp(0)));
        assert_eq!(
            report.verdicts,
            [
                Verdict::Delivered,
                Verdict::Delivered,
                Verdict::Permanent {
                    reason: "bad".into()
                }
            ]
        );
    }
}
