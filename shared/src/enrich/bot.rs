//! Bots and crawlers: the open isbot pattern list (compiled to literal checks
//! in [`super::botlist`]),
//! headless-browser markers, and Cloudflare's bot fields when present.

use serde::{Deserialize, Serialize};

/// What to do with events from bots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotPolicy {
    /// Keep the event, marked as from a bot (`context.sluice.bot`).
    #[default]
    Flag,
    /// Do not store it.
    Drop,
}

/// Why a client was taken for a bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BotReason {
    /// No user agent at all.
    EmptyUserAgent,
    /// The user agent matches the known-bot list.
    KnownBot,
    /// A headless or automation browser (HeadlessChrome, PhantomJS, …).
    Headless,
    /// Cloudflare verified it as a (good) bot.
    CloudflareVerifiedBot,
    /// Cloudflare's bot score says automated (below 30).
    CloudflareScore,
}

impl BotReason {
    /// Stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            BotReason::EmptyUserAgent => "empty_user_agent",
            BotReason::KnownBot => "known_bot",
            BotReason::Headless => "headless",
            BotReason::CloudflareVerifiedBot => "cloudflare_verified_bot",
            BotReason::CloudflareScore => "cloudflare_score",
        }
    }
}

/// Cloudflare's `request.cf.botManagement` fields (Enterprise only; absent elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CfBot {
    pub score: Option<u8>,
    pub verified_bot: bool,
}

/// Cloudflare scores below this are "likely automated".
const CF_BOT_SCORE: u8 = 30;

const HEADLESS_MARKERS: [&str; 6] = [
    "headlesschrome",
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
    "webdriver",
];

/// Is this client a bot, and why? Headless markers are checked before the list,
/// so the more specific reason is reported.
pub fn classify(user_agent: Option<&str>, cf: Option<CfBot>) -> Option<BotReason> {
    if let Some(cf) = cf {
        if cf.verified_bot {
            return Some(BotReason::CloudflareVerifiedBot);
        }
        if cf.score.is_some_and(|s| s < CF_BOT_SCORE) {
            return Some(BotReason::CloudflareScore);
        }
    }
    let ua = user_agent.map(str::trim).unwrap_or_default();
    if ua.is_empty() {
        return Some(BotReason::EmptyUserAgent);
    }
    let lower = ua.to_ascii_lowercase();
    if HEADLESS_MARKERS.iter().any(|m| lower.contains(m)) {
        return Some(BotReason::Headless);
    }
    super::botlist::is_listed(ua).then_some(BotReason::KnownBot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bots_headless_browsers_and_cloudflare_fields() {
        assert_eq!(
            classify(
                Some("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
                None
            ),
            Some(BotReason::KnownBot)
        );
        assert_eq!(
            classify(Some("curl/8.5.0"), None),
            Some(BotReason::KnownBot)
        );
        assert_eq!(
            classify(Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36"), None),
            Some(BotReason::Headless)
        );
        assert_eq!(classify(None, None), Some(BotReason::EmptyUserAgent));
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
        assert_eq!(classify(Some(chrome), None), None);
        assert_eq!(
            classify(
                Some(chrome),
                Some(CfBot {
                    score: Some(5),
                    verified_bot: false
                })
            ),
            Some(BotReason::CloudflareScore)
        );
        assert_eq!(
            classify(
                Some(chrome),
                Some(CfBot {
                    score: Some(90),
                    verified_bot: true
                })
            ),
            Some(BotReason::CloudflareVerifiedBot)
        );
        assert_eq!(
            classify(
                Some(chrome),
                Some(CfBot {
                    score: Some(90),
                    verified_bot: false
                })
            ),
            None
        );
    }
}
