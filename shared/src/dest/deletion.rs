//! Data-subject deletion as one shape across vendors: the vendor's deletion
//! call for a user id, and the verdict on its answer. The worker sends it
//! through the same outbound-HTTP port as events and records it in the audit
//! log.

use super::batching;
use super::{Destination, HttpAnswer, HttpRequest, Verdict};
use crate::dest::{amplitude, braze, mixpanel, posthog};

/// A stable machine-readable code, for errors that cross a boundary.
pub trait Coded {
    fn code(&self) -> &'static str;
}

/// A destination whose vendor has a deletion API.
pub trait Deletion: Destination {
    /// Why the call cannot be built (deletion not configured, empty id).
    type Error: std::error::Error + Coded;

    /// The vendor's deletion call for `user_id`.
    fn delete_request(config: &Self::Config, user_id: &str) -> Result<HttpRequest, Self::Error>;

    /// What the answer means: 2xx accepted, 408/429/5xx retry, other 4xx permanent.
    fn classify_deletion(answer: &HttpAnswer) -> Verdict {
        batching::by_status(answer, Self::NAME, batching::excerpt(&answer.body))
    }
}

macro_rules! deletion {
    ($vendor:ty, $error:ty) => {
        impl Coded for $error {
            fn code(&self) -> &'static str {
                <$error>::code(self)
            }
        }

        impl Deletion for $vendor {
            type Error = $error;

            fn delete_request(
                config: &Self::Config,
                user_id: &str,
            ) -> Result<HttpRequest, Self::Error> {
                <$vendor>::delete_request(config, user_id)
            }
        }
    };
}

deletion!(mixpanel::Mixpanel, mixpanel::MixpanelError);
deletion!(amplitude::Amplitude, amplitude::AmplitudeError);
deletion!(posthog::PostHog, posthog::PostHogError);
deletion!(braze::Braze, braze::BrazeError);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request<D: Deletion>(config: serde_json::Value) -> Result<HttpRequest, D::Error> {
        let config: D::Config = serde_json::from_value(config).unwrap();
        <D as Deletion>::delete_request(&config, "user-12345")
    }

    #[test]
    fn every_vendor_builds_its_deletion_or_says_what_is_missing() {
        assert!(request::<mixpanel::Mixpanel>(
            json!({"project_token": "t", "gdpr_oauth_token": "o"})
        )
        .is_ok());
        assert_eq!(
            request::<mixpanel::Mixpanel>(json!({"project_token": "t"}))
                .unwrap_err()
                .code(),
            "mixpanel_deletion_not_configured"
        );
        assert!(
            request::<amplitude::Amplitude>(json!({"api_key": "k", "secret_key": "s"})).is_ok()
        );
        assert_eq!(
            request::<amplitude::Amplitude>(json!({"api_key": "k"}))
                .unwrap_err()
                .code(),
            "amplitude_deletion_not_configured"
        );
        let ph = json!({"api_key": "k", "host": "https://us.i.posthog.com"});
        assert_eq!(
            request::<posthog::PostHog>(ph).unwrap_err().code(),
            "posthog_deletion_not_configured"
        );
        let r = request::<braze::Braze>(
            json!({"rest_api_key": "k", "rest_endpoint": "https://rest.iad-01.braze.com"}),
        )
        .unwrap();
        assert!(r.events.is_empty(), "a deletion carries no events");
    }

    #[test]
    fn deletion_answers_classify_by_status() {
        let a = |status| HttpAnswer {
            status,
            retry_after_ms: None,
            body: r#"{"message":"x"}"#.into(),
        };
        assert_eq!(braze::Braze::classify_deletion(&a(202)), Verdict::Delivered);
        assert!(matches!(
            mixpanel::Mixpanel::classify_deletion(&a(429)),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            posthog::PostHog::classify_deletion(&a(403)),
            Verdict::Permanent { .. }
        ));
    }
}
