//! The known-bot list: isbot's open pattern list (348 entries,
//! <https://github.com/BryanMorgan/isbot>, MIT, `src/bot_regex_patterns.txt`
//! as of isbot 0.1.3), compiled by hand to literal substring and prefix checks
//! plus seven small hand-written checks for the entries that used regex
//! syntax. No regex engine: the list is scanned once over the user agent,
//! indexed by first byte, comparing ASCII case-insensitively (isbot
//! lowercases the agent and the patterns).
//!
//! The regex entries and where they went:
//! - `[ ]+bot`, `http[s]?://` and the escaped dots (`bit\.ly/`, …): literals in [`CONTAINS`].
//! - unescaped dots (`2ip.ru`, `grub.org`, …) are taken literally (a dot in
//!   those names is a dot in every real agent).
//! - `^[a-z.0-9/ \-_]*bot`, `bot($|[/\);-]+)`, `daum(oa)?[ /][0-9]`,
//!   `ptst[\s/]`, `^fdm[\s/]\d`, `^viber$`, `^whatsapp\+?/[0-9\.]+ [a-z]$`:
//!   the functions below.

/// Entries matched anywhere in the agent (290, sorted, lowercase).
pub const CONTAINS: &[&str] = &[
    " bot",
    "a6-indexer",
    "aboundex",
    "adbeat",
    "addthis",
    "admantx",
    "adscanner",
    "ahc/",
    "aiohttp",
    "amazon cloudfront",
    "analyzer",
    "anyevent",
    "apachebench/",
    "apercite",
    "apis-google",
    "appengine-google",
    "appinsights",
    "arabot",
    "arachni",
    "archiver",
    "axios",
    "baidu-yunguance",
    "banca caboto",
    "barkrowler",
    "bazqux",
    "biglotron",
    "bingpreview/",
    "binlar",
    "bit.ly/",
    "brandverity",
    "browsershots",
    "btwebclient",
    "bubing",
    "buck/",
    "catchpoint",
    "cc metadata scaper",
    "centuryb",
    "changedetection",
    "check_http",
    "checker",
    "checkmarknetwork/",
    "chrome-lighthouse",
    "cincraw",
    "clickagy",
    "cloudflare",
    "coccoc",
    "collection@infegy.com",
    "contextad bot",
    "convera",
    "crawler",
    "curious george",
    "cyberpatrol",
    "dareboost",
    "datadog agent",
    "datafeedwatch",
    "datanyze",
    "dataprovider.com",
    "daum/",
    "dcrawl",
    "deusu/",
    "digg deeper",
    "disqus",
    "dmbrowser",
    "domainreanimator",
    "domains project/",
    "drupact",
    "duplexweb-google",
    "ec2linkfinder",
    "electricmonk",
    "embedly",
    "eright",
    "europarchive.org",
    "evc-batch",
    "extractor",
    "ezid",
    "ezooms",
    "facebookexternalhit",
    "fedoraplanet",
    "feedly",
    "feedspot",
    "feedvalidator",
    "fetcher",
    "findlink",
    "findthatfile",
    "flamingo_searchengine",
    "flipboardproxy",
    "fluffy",
    "freshrss",
    "friendica",
    "g00g1e.net",
    "g2 web services",
    "genieo",
    "gigablast",
    "go-http-client",
    "gobuster",
    "gomezagent",
    "google favicon",
    "google page speed insight",
    "google search",
    "google web preview",
    "google-",
    "googleimageproxy",
    "goose/",
    "grouphigh/",
    "grub.org",
    "guzzlehttp",
    "gwene",
    "hatena",
    "headlesschrome",
    "help@dataminr.com",
    "heritrix",
    "http://",
    "http_get",
    "httpclient",
    "https://",
    "httpunit",
    "httpurlconnection",
    "httpx",
    "httrack",
    "hubspot",
    "ichiro",
    "indeedbot",
    "inoreader.com",
    "integromedb",
    "internetarchive",
    "ips-agent",
    "iskanie",
    "jetslide",
    "jetty",
    "kaspersky",
    "kouio.com",
    "larbin",
    "libwww-perl",
    "linkdex",
    "lipperhey",
    "livelapbot",
    "ltx71",
    "m_bot_tab",
    "mappydata",
    "mastodon",
    "mediapartners-google",
    "megaindex",
    "meltwaternews",
    "metauri",
    "miniflux/",
    "mixnodecache/",
    "mnogosearch",
    "moatbot",
    "monitoring",
    "moreover",
    "muckrack",
    "netcraft",
    "netresearchserver",
    "netsystemsresearch",
    "netvibes",
    "newsblur",
    "newsharecounts",
    "newspaper/",
    "nextcloud",
    "nmap scripting engine",
    "node-fetch/",
    "nutch",
    "nuzzel",
    "okhttp",
    "omgili",
    "optimizer",
    "outbrain",
    "page2rss",
    "pagepeeker/",
    "pandalytics",
    "panscient",
    "pcore-http",
    "phantomjs",
    "phpcrawl",
    "pingdom",
    "pocketparser",
    "postrank",
    "pr-cy.ru",
    "proximic",
    "prtg network monitor",
    "pulsepoint",
    "pycurl",
    "python-requests",
    "python-urllib",
    "qihoobot",
    "qqdownload",
    "qwantify",
    "rivva",
    "robot",
    "robozilla",
    "scoutjet",
    "scraper",
    "scrapy",
    "searchatlas",
    "seewithkids",
    "seobility",
    "seokicks",
    "seolizer",
    "seoscanners",
    "seznam",
    "simplepie",
    "site24x7",
    "siteexplorer.info",
    "siteimprove.com",
    "sixy.ch",
    "skypeuripreview",
    "slack-imgproxy",
    "slurp",
    "snacktory",
    "sogou",
    "sparkler/",
    "spider",
    "sputnik",
    "statically-",
    "staticlogin:productcbox",
    "statuscake",
    "summify",
    "superfeedr",
    "supybot",
    "swimgbot",
    "sysomos",
    "teoma",
    "theoldreader.com",
    "thinkchaos",
    "thinklab",
    "tineye",
    "tiny tiny rss",
    "traackr.com",
    "tracemyfile",
    "transcoder",
    "trendsmapresolver",
    "trove",
    "turbotabbee",
    "tweetedtimes",
    "twingly",
    "twurly",
    "um-ln",
    "unshortenit",
    "upflow",
    "uptime",
    "validator.nu",
    "vigil/",
    "virustotal",
    "vkshare",
    "voilabot",
    "w3c-checklink",
    "w3c-mobileok",
    "w3c_css_validator",
    "w3c_unicorn",
    "w3c_validator",
    "webdatastats",
    "webmon ",
    "webreaper",
    "webthumbnail",
    "wesee:search",
    "wget",
    "whatcms/",
    "wordupinfosearch",
    "wotbox",
    "xenu link sleuth",
    "y!j",
    "yahoo link preview",
    "yak/",
    "yandexadnet",
    "yandexblogs",
    "yandexcalendar",
    "yandexdirect",
    "yandexfavicons",
    "yandexfordomain",
    "yandeximageresizer",
    "yandeximages",
    "yandexmarket",
    "yandexmedia",
    "yandexmetrika",
    "yandexnews",
    "yandexontodb",
    "yandexpartner",
    "yandexrca",
    "yandexsearchshop",
    "yandexsitelinks",
    "yandextracker",
    "yandexturbo",
    "yandexverticals",
    "yandexvertis",
    "yandexvideo",
    "yandexwebmaster",
    "yanga",
    "yeti",
    "zabbix",
    "zgrab",
];

/// Entries matched at the start of the agent (`^…` in the list; 52, sorted, lowercase).
pub const PREFIXES: &[&str] = &[
    "2ip.ru",
    "ad muncher",
    "avsdevicesdk/",
    "bidtellect/",
    "blackboard",
    "blogtrottr",
    "boardreader",
    "castro",
    "collectd",
    "comodo",
    "cortex",
    "curl",
    "ddg_android",
    "duckduckgo",
    "email",
    "expanse",
    "ez publish",
    "feedbin",
    "fever",
    "holmes",
    "java/",
    "javascript",
    "lcc ",
    "lua-resty-http",
    "navermailapp",
    "netlyzer fastprobe",
    "netsurf",
    "newsgator",
    "ning/",
    "octopus",
    "pagepeeker",
    "pagething",
    "php",
    "php-curl-class",
    "postmanruntime",
    "prittorrent",
    "rainmeter",
    "ramblermail",
    "sentry/",
    "server density",
    "sitesucker",
    "snapchat",
    "spotify/",
    "sprinklr",
    "the knowledge ai",
    "unityplayer",
    "websitepulse",
    "windows-rss",
    "wsr-agent",
    "yahoo:linkexpander",
    "yahoocachesystem",
    "zooshot",
];

/// `(start, end)` into a sorted list for each first byte (ASCII), and which
/// second bytes follow it, so a scan looks at a position only when some entry
/// starts with its two bytes, and then compares only that first byte's entries.
struct Index {
    ranges: [(u16, u16); 128],
    pairs: [u128; 128],
}

const fn index(list: &[&str]) -> Index {
    let mut out = Index {
        ranges: [(0, 0); 128],
        pairs: [0; 128],
    };
    let mut i = 0;
    while i < list.len() {
        let p = list[i].as_bytes();
        let b = (p[0] & 0x7f) as usize;
        if out.ranges[b].1 == 0 {
            out.ranges[b].0 = i as u16;
        }
        out.ranges[b].1 = i as u16 + 1;
        // Every entry has two bytes or more (a test says so).
        out.pairs[b] |= 1u128 << (p[1] & 0x7f);
        i += 1;
    }
    out
}

const CONTAINS_INDEX: Index = index(CONTAINS);

/// Does the user agent match any entry of the known-bot list?
pub fn is_listed(user_agent: &str) -> bool {
    let lower = user_agent.to_ascii_lowercase();
    let s = lower.as_bytes();
    let first = s.first().copied().unwrap_or_default();
    PREFIXES
        .iter()
        .any(|p| p.as_bytes()[0] == first && s.starts_with(p.as_bytes()))
        || contains_any(s)
        || bot_word(&lower)
        || daum(&lower)
        || ptst(&lower)
        || fdm(s)
        || s == b"viber"
        || whatsapp(s)
}

fn contains_any(s: &[u8]) -> bool {
    s.windows(2).enumerate().any(|(i, two)| {
        let [a, b] = [two[0], two[1]];
        if !a.is_ascii() || !b.is_ascii() || CONTAINS_INDEX.pairs[a as usize] & (1 << b) == 0 {
            return false;
        }
        let (from, to) = CONTAINS_INDEX.ranges[a as usize];
        CONTAINS[from as usize..to as usize]
            .iter()
            .any(|p| p.as_bytes()[1] == b && s[i..].starts_with(p.as_bytes()))
    })
}

/// Every position where `needle` starts in `s`.
fn positions<'a>(s: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    s.match_indices(needle).map(|(i, _)| i)
}

/// `\s` (ASCII; the agent is ASCII in practice).
fn is_space(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0x0b
}

/// `^[a-z.0-9/ \-_]*bot` and `bot($|[/\);-]+)`.
fn bot_word(lower: &str) -> bool {
    let s = lower.as_bytes();
    let plain = s
        .iter()
        .take_while(|&&b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'.' | b'/' | b' ' | b'-' | b'_')
        })
        .count();
    positions(lower, "bot").any(|i| {
        i <= plain
            || s.get(i + 3)
                .is_none_or(|b| matches!(b, b'/' | b')' | b';' | b'-'))
    })
}

/// `daum(oa)?[ /][0-9]`.
fn daum(lower: &str) -> bool {
    let s = lower.as_bytes();
    let version = |r: &[u8]| matches!(r, [b' ' | b'/', d, ..] if d.is_ascii_digit());
    positions(lower, "daum").any(|i| {
        let rest = &s[i + 4..];
        version(rest) || rest.strip_prefix(b"oa").is_some_and(version)
    })
}

/// `ptst[\s/]`.
fn ptst(lower: &str) -> bool {
    let s = lower.as_bytes();
    positions(lower, "ptst").any(|i| s.get(i + 4).is_some_and(|&b| b == b'/' || is_space(b)))
}

/// `^fdm[\s/]\d`.
fn fdm(s: &[u8]) -> bool {
    matches!(s, [b'f', b'd', b'm', sep, d, ..] if (*sep == b'/' || is_space(*sep)) && d.is_ascii_digit())
}

/// `^whatsapp\+?/[0-9\.]+ [a-z]$`.
fn whatsapp(s: &[u8]) -> bool {
    let Some(rest) = s.strip_prefix(b"whatsapp") else {
        return false;
    };
    let rest = rest.strip_prefix(b"+").unwrap_or(rest);
    let Some(rest) = rest.strip_prefix(b"/") else {
        return false;
    };
    let digits = rest
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .count();
    digits > 0 && matches!(&rest[digits..], [b' ', l] if l.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_sorted_lowercase_ascii_so_the_index_finds_every_entry() {
        for list in [CONTAINS, PREFIXES] {
            assert!(
                list.windows(2).all(|w| w[0] < w[1]),
                "sorted, no duplicates"
            );
            for p in list {
                assert!(p.len() >= 2 && p.is_ascii(), "{p:?}");
                assert_eq!(p.to_ascii_lowercase(), *p);
            }
        }
        for (i, p) in CONTAINS.iter().enumerate() {
            let (from, to) = CONTAINS_INDEX.ranges[p.as_bytes()[0] as usize];
            assert!((from as usize..to as usize).contains(&i), "{p}");
            assert!(
                is_listed(&format!("Mozilla/5.0 ({})", p.to_uppercase())),
                "{p}"
            );
        }
        for p in PREFIXES {
            assert!(is_listed(&p.to_uppercase()), "{p}");
        }
    }

    #[test]
    fn the_hand_written_entries_match_as_their_regexes_did() {
        let yes = [
            "Googlebot/2.1",
            "some-crawler bot",
            "MyBot",
            "Mozilla/5.0 (X; thebot)",
            "Mozilla/5.0 (X; thebot-x",
            "Mozilla/5.0 (X; thebot",
            "Mozilla/5.0 Daum/4.1",
            "Mozilla/5.0 (compatible; Daumoa 4.0)",
            "PTST/1.0",
            "Mozilla PTST 2",
            "FDM/5",
            "fdm 3.x",
            "Viber",
            "WhatsApp/2.23.20 A",
            "WhatsApp+/1.0 i",
        ];
        let no = [
            "Mozilla/5.0 (X;abbotx) Chrome/1",
            "Mozilla/5.0 (x) curl/8",
            "Mozilla/5.0 Daum",
            "Mozilla/5.0 Daumoa",
            "Mozilla/5.0 ptstx",
            "xfdm/5",
            "fdm/x",
            "Viber/1.0",
            "WhatsApp/2.23.20 AB",
            "WhatsApp/ A",
            "Mozilla/5.0 WhatsApp/2.0 a",
        ];
        for ua in yes {
            assert!(is_listed(ua), "{ua}");
        }
        for ua in no {
            assert!(!is_listed(ua), "{ua}");
        }
    }
}
