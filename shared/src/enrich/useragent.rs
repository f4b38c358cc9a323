//! User agent → browser, OS, device type (woothee), refined by client hints.

use serde::Serialize;

/// What a user agent says about the client.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct UserAgent {
    pub browser: Named,
    pub os: Named,
    /// `desktop`, `mobile`, `tablet`, `bot`, or `other`.
    pub device_type: &'static str,
}

/// A name and version.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Named {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// Low-entropy User-Agent Client Hints (`Sec-CH-UA-*` headers or `navigator.userAgentData`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHints {
    /// `Sec-CH-UA-Mobile: ?1`.
    pub mobile: Option<bool>,
    /// `Sec-CH-UA-Platform: "Windows"`.
    pub platform: Option<String>,
    /// The most specific brand of `Sec-CH-UA` (not the GREASE or "Chromium" entry), with its major version.
    pub brand: Option<(String, String)>,
}

impl ClientHints {
    /// Read the `Sec-CH-UA`, `Sec-CH-UA-Mobile` and `Sec-CH-UA-Platform` header values.
    pub fn from_headers(
        ua: Option<&str>,
        mobile: Option<&str>,
        platform: Option<&str>,
    ) -> ClientHints {
        let unquote = |s: &str| s.trim().trim_matches('"').to_owned();
        let brand = ua.and_then(|list| {
            let brands: Vec<(String, String)> = list
                .split(',')
                .filter_map(|entry| {
                    let (name, version) = entry.split_once(";v=")?;
                    Some((unquote(name), unquote(version)))
                })
                .filter(|(name, _)| !name.contains("Brand") && !name.is_empty())
                .collect();
            brands
                .iter()
                .find(|(n, _)| n != "Chromium")
                .or_else(|| brands.first())
                .cloned()
        });
        ClientHints {
            mobile: mobile.map(|m| m.trim() == "?1"),
            platform: platform.map(unquote).filter(|p| !p.is_empty()),
            brand,
        }
    }
}

fn known(s: &str) -> String {
    if s == "UNKNOWN" {
        String::new()
    } else {
        s.to_owned()
    }
}

/// Parse a user agent string, then let client hints fill in or correct it
/// (Chrome's reduced UA string freezes the OS version and platform details).
pub fn parse(ua: &str, hints: &ClientHints) -> UserAgent {
    let mut out = match woothee::parser::Parser::new().parse(ua) {
        Some(r) => UserAgent {
            browser: Named {
                name: known(r.name),
                version: known(r.version),
            },
            os: Named {
                name: known(r.os),
                version: known(&r.os_version),
            },
            device_type: match r.category {
                "pc" => "desktop",
                "smartphone" | "mobilephone" => "mobile",
                "crawler" => "bot",
                "appliance" | "misc" => "other",
                _ => "other",
            },
        },
        None => UserAgent {
            device_type: "other",
            ..UserAgent::default()
        },
    };
    if out.device_type == "mobile"
        && (ua.contains("iPad") || (ua.contains("Android") && !ua.contains("Mobile")))
    {
        out.device_type = "tablet";
    }
    if let Some(platform) = &hints.platform {
        if out.os.name.is_empty() || !out.os.name.starts_with(platform.as_str()) {
            out.os = Named {
                name: platform.clone(),
                version: String::new(),
            };
        }
    }
    if let Some(mobile) = hints.mobile {
        if out.device_type != "bot" && out.device_type != "tablet" {
            out.device_type = if mobile { "mobile" } else { "desktop" };
        }
    }
    if out.browser.name.is_empty() {
        if let Some((name, version)) = &hints.brand {
            out.browser = Named {
                name: name.clone(),
                version: version.clone(),
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const FIREFOX_LINUX: &str =
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
    const GOOGLEBOT: &str =
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

    #[test]
    fn parses_common_browsers() {
        let none = ClientHints::default();
        let c = parse(CHROME_WIN, &none);
        assert_eq!(
            (c.browser.name.as_str(), c.os.name.as_str(), c.device_type),
            ("Chrome", "Windows 10", "desktop")
        );
        assert!(c.browser.version.starts_with("124"));
        let s = parse(SAFARI_IPHONE, &none);
        assert_eq!(
            (s.browser.name.as_str(), s.os.name.as_str(), s.device_type),
            ("Safari", "iPhone", "mobile")
        );
        let f = parse(FIREFOX_LINUX, &none);
        assert_eq!(
            (f.browser.name.as_str(), f.os.name.as_str(), f.device_type),
            ("Firefox", "Linux", "desktop")
        );
        assert_eq!(parse(GOOGLEBOT, &none).device_type, "bot");
        assert_eq!(parse("", &none).device_type, "other");
    }

    #[test]
    fn client_hints_refine_the_reduced_user_agent() {
        let hints = ClientHints::from_headers(
            Some(r#""Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99""#),
            Some("?1"),
            Some("\"Android\""),
        );
        assert_eq!(hints.brand, Some(("Google Chrome".into(), "124".into())));
        let ua = parse(CHROME_WIN, &hints);
        assert_eq!(ua.os.name, "Android");
        assert_eq!(ua.device_type, "mobile");
    }
}
