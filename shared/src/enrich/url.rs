//! Just enough URL handling for enrichment: host and query parameters.

/// Percent-decode (and `+` → space) a query component; invalid escapes are kept as they are.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query parameters of a URL (or of a bare `?a=b` search string), decoded, in order.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// The lower-cased host of an absolute URL, without port or `www.`-stripping.
pub fn host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if host_port.starts_with('[') {
        host_port.split(']').next()?.trim_start_matches('[')
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The path of an absolute URL (`/` if none).
pub fn path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let after_host = rest.find('/').map_or("/", |i| &rest[i..]);
    after_host
        .split(['?', '#'])
        .next()
        .unwrap_or("/")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hosts_paths_and_queries() {
        assert_eq!(
            host("https://User@Shop.Example.com:8443/a?b#c").as_deref(),
            Some("shop.example.com")
        );
        assert_eq!(
            host("http://[2001:db8::1]:80/").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(host("/relative"), None);
        assert_eq!(path("https://a.com/x/y?z=1"), "/x/y");
        assert_eq!(path("https://a.com"), "/");
        assert_eq!(
            query_pairs("https://a.com/?q=blue+mug&x=%E2%82%AC&bad=%zz&flag#frag"),
            vec![
                ("q".into(), "blue mug".into()),
                ("x".into(), "€".into()),
                ("bad".into(), "%zz".into()),
                ("flag".into(), String::new())
            ]
        );
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("%4"), "%4");
    }
}
