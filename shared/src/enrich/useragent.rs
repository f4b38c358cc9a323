//! User agent → browser, OS, device type, refined by client hints.
//!
//! A token scan, no regex: each browser and OS is found by its product token
//! (`Chrome/`, `Edg/`, `Windows NT 10.0`, `CPU iPhone OS 17_4`…), checked in
//! the order that tells look-alikes apart (Edge, Opera and Samsung Internet
//! all say `Chrome/`; Chrome says `Safari/`). Names and versions keep the
//! vocabulary stored events already carry (woothee's, which this replaces):
//! `Windows 10` with version `NT 10.0`, `Mac OSX`, `iPhone`, `SamsungBrowser`.
//! Anything on the known-bot list is device type `bot`; its browser and OS
//! are what it claims to be.

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

/// A string `Named` from static parts.
fn named(name: &str, version: &str) -> Named {
    Named {
        name: name.to_owned(),
        version: version.to_owned(),
    }
}

/// The `[.0-9]+` run right after the first `token` (`Chrome/` → `124.0.0.0`).
fn version_after<'a>(ua: &'a str, token: &str) -> Option<&'a str> {
    let at = ua.find(token)? + token.len();
    let rest = &ua[at..];
    let len = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    Some(&rest[..len])
}

/// The version after the first of `tokens` present.
fn version_after_any<'a>(ua: &'a str, tokens: &[&str]) -> Option<&'a str> {
    tokens.iter().find_map(|t| version_after(ua, t))
}

/// The browser, by product token.
fn browser(ua: &str) -> Named {
    let has = |t: &str| ua.contains(t);
    if has("compatible; MSIE") || has("Trident/") || has("IEMobile") {
        let version = version_after(ua, "MSIE ")
            .or_else(|| has("Trident/").then(|| version_after(ua, " rv:")).flatten())
            .or_else(|| version_after(ua, "IEMobile/"))
            .unwrap_or_default();
        return named("Internet Explorer", version);
    }
    let branded = [
        (&["Edg/", "Edge/", "EdgA/", "EdgiOS/"][..], "Edge"),
        (&["Vivaldi/"][..], "Vivaldi"),
        (&["FxiOS/"][..], "Firefox"),
        (&["YaBrowser/"][..], "Yandex Browser"),
        (&["SamsungBrowser/"][..], "SamsungBrowser"),
    ];
    for (tokens, name) in branded {
        if let Some(version) = version_after_any(ua, tokens) {
            return named(name, version);
        }
    }
    let webview = has("Chrome") && has("wv");
    if !webview && has("Safari/") {
        if let Some(version) = version_after(ua, "OPR/") {
            return named("Opera", version);
        }
        if let Some(version) = version_after_any(ua, &["Chrome/", "CriOS/", "CrMo/"]) {
            return named("Chrome", version);
        }
        if let Some(version) = version_after(ua, "GSA/") {
            return named("Google Search App", version);
        }
        return named("Safari", version_after(ua, "Version/").unwrap_or_default());
    }
    if let Some(version) = version_after(ua, "Firefox/") {
        return named("Firefox", version);
    }
    if has("Opera") {
        let version = version_after(ua, "Version/")
            .or_else(|| version_after_any(ua, &["Opera/", "Opera "]))
            .unwrap_or_default();
        return named("Opera", version);
    }
    let ios_app = ["iPhone;", "iPad;", "iPod"].iter().any(|t| has(t)) && has("like Mac OS X");
    if webview || ios_app {
        return named("Webview", version_after(ua, "Version/").unwrap_or_default());
    }
    Named::default()
}

/// Device classes before the tablet and client-hint refinements.
const DESKTOP: &str = "desktop";
const MOBILE: &str = "mobile";

/// The OS, and whether it is a desktop or a phone OS.
fn os(ua: &str) -> Option<(Named, &'static str)> {
    let has = |t: &str| ua.contains(t);
    if has("Windows") && !has("Xbox") {
        if let Some(found) = windows(ua) {
            return Some(found);
        }
    }
    if has("Mac OS X") {
        return Some(apple(ua));
    }
    if has("Linux") || has("Android") {
        return Some(if has("Android") {
            (named("Android", android_version(ua)), MOBILE)
        } else {
            (named("Linux", ""), DESKTOP)
        });
    }
    let found = if has("iPhone") || has("iPad") || has("iPod") {
        let name = ["iPhone", "iPad", "iPod"].into_iter().find(|t| has(t));
        (named(name.unwrap_or_default(), ""), MOBILE)
    } else if has("CFNetwork") {
        (named("iOS", ""), MOBILE)
    } else if has("BB10") {
        (
            named(
                "BlackBerry 10",
                version_after(ua, "Version/").unwrap_or_default(),
            ),
            MOBILE,
        )
    } else if has("BlackBerry") {
        (named("BlackBerry", ""), MOBILE)
    } else if has("X11; CrOS ") {
        (
            named("ChromeOS", delimited_after(ua, "CrOS ", b')')),
            DESKTOP,
        )
    } else if has("X11; FreeBSD ") {
        (named("BSD", delimited_after(ua, "FreeBSD ", b';')), DESKTOP)
    } else {
        return None;
    };
    Some(found)
}

/// The text after `token` up to `end` (exclusive), or `""` when `end` never comes.
fn delimited_after<'a>(ua: &'a str, token: &str, end: u8) -> &'a str {
    ua.find(token)
        .map(|at| &ua[at + token.len()..])
        .and_then(|rest| rest.bytes().position(|b| b == end).map(|n| &rest[..n]))
        .unwrap_or_default()
}

/// `Android 14`, `Android-4.4.2` → `14`, `4.4.2` (up to three numbers; the
/// first `Android` followed by a version).
fn android_version(ua: &str) -> &str {
    ua.match_indices("Android")
        .map(|(at, _)| &ua[at + "Android".len()..])
        .filter_map(|rest| rest.strip_prefix([' ', '-']))
        .map(|rest| {
            let mut dots = 0;
            let len = rest
                .bytes()
                .take_while(|&b| {
                    dots += usize::from(b == b'.');
                    b.is_ascii_digit() || (b == b'.' && dots < 3)
                })
                .count();
            rest[..len].trim_end_matches('.')
        })
        .find(|v| !v.is_empty())
        .unwrap_or_default()
}

/// `Windows NT 10.0` → `Windows 10` (`NT 10.0`); a phone is a phone; a
/// version token this does not know is no answer (the other checks go on).
fn windows(ua: &str) -> Option<(Named, &'static str)> {
    let token = ua.find("Windows ").map(|at| {
        let rest = &ua[at + "Windows ".len()..];
        let len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'.'))
            .count();
        rest[..len].trim_end()
    });
    let name = match token.unwrap_or_default() {
        "NT 10.0" => "Windows 10",
        "NT 6.3" => "Windows 8.1",
        "NT 6.2" => "Windows 8",
        "NT 6.1" => "Windows 7",
        "NT 6.0" => "Windows Vista",
        "NT 5.1" => "Windows XP",
        "NT 5.0" => "Windows 2000",
        "NT 4.0" => "Windows NT 4.0",
        "98" => "Windows 98",
        "95" => "Windows 95",
        "CE" => return Some((named("Windows CE", "CE"), MOBILE)),
        phone if phone.starts_with("Phone") => {
            let version = phone
                .trim_start_matches("Phone")
                .trim_start_matches(" OS")
                .trim();
            return Some((named("Windows Phone OS", version), MOBILE));
        }
        "" => return Some((named("Windows UNKNOWN Ver", ""), DESKTOP)),
        _ => return None,
    };
    Some((named(name, token.unwrap_or_default()), DESKTOP))
}

/// `Mac OS X 10_15_7` → `Mac OSX` `10.15.7`; `CPU iPhone OS 17_4 like Mac OS X` → `iPhone` `17.4`.
fn apple(ua: &str) -> (Named, &'static str) {
    let dotted = |v: &str| v.replace('_', ".");
    let run = |rest: &str| {
        let len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || matches!(b, b'_' | b'.'))
            .count();
        rest[..len].trim_end_matches(['_', '.']).to_owned()
    };
    if let Some(like) = ua.find(" like Mac OS X") {
        let name = ["iPhone;", "iPad;", "iPod"]
            .into_iter()
            .find(|t| ua.contains(t))
            .map_or("Mac OSX", |t| t.trim_end_matches(';'));
        let before = &ua[..like];
        let version = before
            .rfind(" OS ")
            .map(|at| &before[at + " OS ".len()..])
            .filter(|v| v.bytes().all(|b| b.is_ascii_digit() || b == b'_'))
            .unwrap_or_default();
        let category = if name == "Mac OSX" { DESKTOP } else { MOBILE };
        return (named(name, &dotted(version)), category);
    }
    let version = ua
        .find("Mac OS X ")
        .map(|at| run(&ua[at + "Mac OS X ".len()..]))
        .unwrap_or_default();
    (named("Mac OSX", &dotted(&version)), DESKTOP)
}

/// Parse a user agent string, then let client hints fill in or correct it
/// (Chrome's reduced UA string freezes the OS version and platform details).
pub fn parse(ua: &str, hints: &ClientHints) -> UserAgent {
    let mut out = UserAgent {
        device_type: "other",
        ..UserAgent::default()
    };
    if !ua.is_empty() && ua != "-" {
        out.browser = browser(ua);
        if let Some((os, class)) = os(ua) {
            out.os = os;
            out.device_type = class;
        }
        if super::botlist::is_listed(ua) {
            out.device_type = "bot";
        }
    }
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
