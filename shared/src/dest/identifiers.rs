//! Identifiers for advertising destinations: normalised by each vendor's
//! published rules, then SHA-256 hashed (lowercase hex), so raw personal data
//! never leaves for an advertising destination.
//!
//! | kind | normalised as | sources of the rule |
//! | --- | --- | --- |
//! | email | trim, lowercase; Google also drops the dots of a `gmail.com` / `googlemail.com` local part | Meta [customer information parameters]; Google [Data Manager formatting], [Ads enhanced conversions] |
//! | phone | digits with the country code: Meta without `+` (`16169547888`), Google and TikTok E.164 with `+` (`+18005550100`); a national number needs a default country calling code | Meta as above; Google as above |
//! | first / last name | trim, lowercase, punctuation removed, inner whitespace collapsed | Meta (`fn`, `ln`), Google (`hashedFirstName`) |
//! | city | lowercase, no spaces, no punctuation (`menlopark`) | Meta (`ct`) |
//! | state | US: the two-letter ANSI code (`Texas` → `tx`); elsewhere lowercase without spaces or punctuation | Meta (`st`) |
//! | zip | lowercase without spaces or dashes; US: the first 5 digits | Meta (`zp`), Google (`postal_code`) |
//! | country | ISO 3166-1 alpha-2, lowercase (a few names and alpha-3 codes are read) | Meta (`country`), Google (`region_code`, sent upper case) |
//! | gender | `f` or `m` | Meta (`ge`) |
//! | date of birth | `YYYYMMDD` (from `YYYY-MM-DD`, or a slashed date whose day tells the order) | Meta (`db`) |
//! | external id | trim, lowercase | Meta (`external_id`, as its Business SDK normalises it), TikTok |
//!
//! A value that is already 64 hexadecimal digits is taken as an
//! already-hashed SHA-256 and passed through (lowercased), never hashed twice.
//!
//! [customer information parameters]: https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
//! [Data Manager formatting]: https://developers.google.com/data-manager/api/get-started/formatting
//! [Ads enhanced conversions]: https://developers.google.com/google-ads/api/docs/conversions/upload-online

use sha2::{Digest, Sha256};
use std::fmt;

/// What an identifier is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Email,
    Phone,
    FirstName,
    LastName,
    City,
    State,
    Zip,
    Country,
    Gender,
    DateOfBirth,
    ExternalId,
}

impl Kind {
    /// Stable name, used in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::FirstName => "first_name",
            Kind::LastName => "last_name",
            Kind::City => "city",
            Kind::State => "state",
            Kind::Zip => "zip",
            Kind::Country => "country",
            Kind::Gender => "gender",
            Kind::DateOfBirth => "date_of_birth",
            Kind::ExternalId => "external_id",
        }
    }
}

/// Which vendor's variant of the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Vendor {
    /// Meta Conversions API: phone digits without `+`.
    #[default]
    Meta,
    /// Google Ads / Data Manager: Gmail dots removed, phone E.164 with `+`.
    Google,
    /// TikTok Events API: phone E.164 with `+`.
    TikTok,
}

/// The rules for one destination: its vendor, and the country calling code
/// assumed for a phone number written without one (`"1"`, `"44"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rules<'a> {
    pub vendor: Vendor,
    pub default_calling_code: Option<&'a str>,
}

/// Why a value cannot be used as an identifier (the event is still sent without it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentifierError {
    /// Nothing left after normalising.
    Empty(Kind),
    /// Not `local@domain`.
    NotAnEmail,
    /// Not a phone number (fewer than 7 or more than 15 digits, or letters).
    NotAPhone,
    /// A national number and no default country calling code configured.
    NoCallingCode,
    /// Not a two-letter country (or a name this module knows).
    NotACountry,
    /// Neither female nor male.
    NotAGender,
    /// Not `YYYY-MM-DD` or `YYYYMMDD` with a real date.
    NotADate,
}

impl IdentifierError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            IdentifierError::Empty(_) => "identifier_empty",
            IdentifierError::NotAnEmail => "identifier_not_an_email",
            IdentifierError::NotAPhone => "identifier_not_a_phone",
            IdentifierError::NoCallingCode => "identifier_no_calling_code",
            IdentifierError::NotACountry => "identifier_not_a_country",
            IdentifierError::NotAGender => "identifier_not_a_gender",
            IdentifierError::NotADate => "identifier_not_a_date",
        }
    }
}

impl fmt::Display for IdentifierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentifierError::Empty(kind) => write!(f, "the {} is empty", kind.as_str()),
            IdentifierError::NotAnEmail => f.write_str("not an email address (local@domain)"),
            IdentifierError::NotAPhone => {
                f.write_str("not a phone number (7 to 15 digits, optional + and separators)")
            }
            IdentifierError::NoCallingCode => f.write_str(
                "a national phone number, and no default country calling code is configured",
            ),
            IdentifierError::NotACountry => f.write_str("not an ISO 3166-1 alpha-2 country"),
            IdentifierError::NotAGender => f.write_str("gender must be female/f or male/m"),
            IdentifierError::NotADate => f.write_str("date of birth must be YYYY-MM-DD"),
        }
    }
}

impl std::error::Error for IdentifierError {}

/// SHA-256 of `s`, lowercase hex.
pub fn sha256_hex(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Is `s` already a SHA-256 in hex (64 hex digits, either case)?
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The value normalised by `rules`, unhashed (for the fields vendors want in
/// clear, like Google's `countryCode` and `postalCode`).
pub fn normalize(kind: Kind, raw: &str, rules: Rules<'_>) -> Result<String, IdentifierError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(IdentifierError::Empty(kind));
    }
    let out = match kind {
        Kind::Email => email(trimmed, rules.vendor)?,
        Kind::Phone => phone(trimmed, rules)?,
        Kind::FirstName | Kind::LastName => name(trimmed),
        Kind::City => squeeze(trimmed),
        Kind::State => state(trimmed),
        Kind::Zip => zip(trimmed),
        Kind::Country => country(trimmed)?.to_owned(),
        Kind::Gender => gender(trimmed)?.to_owned(),
        Kind::DateOfBirth => date_of_birth(trimmed)?,
        Kind::ExternalId => trimmed.to_lowercase(),
    };
    if out.is_empty() {
        return Err(IdentifierError::Empty(kind));
    }
    Ok(out)
}

/// The value normalised by `rules` and SHA-256 hashed; an already-hashed
/// value passes through, lowercased.
pub fn hashed(kind: Kind, raw: &str, rules: Rules<'_>) -> Result<String, IdentifierError> {
    let trimmed = raw.trim();
    if is_sha256_hex(trimmed) {
        return Ok(trimmed.to_ascii_lowercase());
    }
    normalize(kind, trimmed, rules).map(|n| sha256_hex(&n))
}

fn email(s: &str, vendor: Vendor) -> Result<String, IdentifierError> {
    let lower = s.to_lowercase();
    let (local, domain) = lower.split_once('@').ok_or(IdentifierError::NotAnEmail)?;
    if local.is_empty()
        || domain.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || lower.chars().any(char::is_whitespace)
    {
        return Err(IdentifierError::NotAnEmail);
    }
    if vendor == Vendor::Google && matches!(domain, "gmail.com" | "googlemail.com") {
        let local: String = local.chars().filter(|c| *c != '.').collect();
        if local.is_empty() {
            return Err(IdentifierError::NotAnEmail);
        }
        return Ok(format!("{local}@{domain}"));
    }
    Ok(lower)
}

fn phone(s: &str, rules: Rules<'_>) -> Result<String, IdentifierError> {
    if s.chars()
        .any(|c| !(c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '(' | ')' | '/' | ' ')))
    {
        return Err(IdentifierError::NotAPhone);
    }
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let international = if s.starts_with('+') {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else {
        let code = rules
            .default_calling_code
            .map(|c| c.trim_start_matches('+'))
            .filter(|c| !c.is_empty())
            .ok_or(IdentifierError::NoCallingCode)?;
        // A national number: its trunk prefix 0 goes ("020 7946 0018" → "44 20 7946 0018").
        // A number already written with the default code but no '+' (NANP "1 616 …") keeps it.
        let national = digits.trim_start_matches('0');
        if national.starts_with(code) && national.len() > 10 {
            national.to_owned()
        } else {
            format!("{code}{national}")
        }
    };
    let international = international.trim_start_matches('0');
    if !(7..=15).contains(&international.len()) {
        return Err(IdentifierError::NotAPhone);
    }
    Ok(match rules.vendor {
        Vendor::Meta => international.to_owned(),
        Vendor::Google | Vendor::TikTok => format!("+{international}"),
    })
}

fn name(s: &str) -> String {
    let cleaned: String = s
        .to_lowercase()
        .chars()
        .filter(|c| !is_punctuation(*c))
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Lowercase, without whitespace or punctuation (Meta's `ct`, `st`).
fn squeeze(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace() && !is_punctuation(*c))
        .collect()
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || matches!(c, '’' | '‘' | '“' | '”' | '´' | '`' | '–' | '—')
}

fn state(s: &str) -> String {
    let squeezed = squeeze(s);
    US_STATES
        .iter()
        .find(|(name, _)| squeeze(name) == squeezed)
        .map_or(squeezed, |(_, code)| (*code).to_owned())
}

fn zip(s: &str) -> String {
    let z: String = s
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    // A US ZIP or ZIP+4 (all digits, 5 or 9 of them): only the first five count.
    if (z.len() == 5 || z.len() == 9) && z.bytes().all(|b| b.is_ascii_digit()) {
        z[..5].to_owned()
    } else {
        z
    }
}

fn country(s: &str) -> Result<&'static str, IdentifierError> {
    let squeezed = squeeze(s);
    COUNTRY_NAMES
        .iter()
        .find(|(names, _)| names.iter().any(|n| *n == squeezed))
        .map(|(_, code)| *code)
        .or_else(|| ISO_ALPHA2.iter().find(|c| **c == squeezed).copied())
        .ok_or(IdentifierError::NotACountry)
}

fn gender(s: &str) -> Result<&'static str, IdentifierError> {
    match s.to_lowercase().as_str() {
        "f" | "female" | "woman" | "w" => Ok("f"),
        "m" | "male" | "man" => Ok("m"),
        _ => Err(IdentifierError::NotAGender),
    }
}

fn date_of_birth(s: &str) -> Result<String, IdentifierError> {
    let date = s.get(..10).filter(|d| d.as_bytes().get(4) == Some(&b'-'));
    let ymd: String = match date {
        Some(d) if d.as_bytes()[7] == b'-' => d.chars().filter(|c| *c != '-').collect(),
        _ if s.contains('/') => slashed_date(s)?,
        _ if s.len() == 8 => s.to_owned(),
        _ => return Err(IdentifierError::NotADate),
    };
    if ymd.len() != 8 || !ymd.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdentifierError::NotADate);
    }
    let (y, m, d) = (&ymd[..4], &ymd[4..6], &ymd[6..]);
    let probe = format!("{y}-{m}-{d}T00:00:00Z");
    crate::Timestamp::parse(&probe).map_err(|_| IdentifierError::NotADate)?;
    Ok(ymd)
}

/// `M/D/YYYY` or `D/M/YYYY`, only when the day tells which (`2/16/1997`,
/// Meta's example): `3/4/1997` could be either and is refused.
fn slashed_date(s: &str) -> Result<String, IdentifierError> {
    let parts: Vec<&str> = s.split('/').collect();
    let [a, b, year] = parts.as_slice() else {
        return Err(IdentifierError::NotADate);
    };
    let (a, b): (u32, u32) = (
        a.parse().map_err(|_| IdentifierError::NotADate)?,
        b.parse().map_err(|_| IdentifierError::NotADate)?,
    );
    let (month, day) = match (a, b) {
        (m, d) if m <= 12 && d > 12 => (m, d),
        (d, m) if d > 12 && m <= 12 => (m, d),
        _ => return Err(IdentifierError::NotADate),
    };
    if year.len() != 4 || !year.bytes().all(|c| c.is_ascii_digit()) {
        return Err(IdentifierError::NotADate);
    }
    Ok(format!("{year}{month:02}{day:02}"))
}

/// US states, DC and territories: name → two-letter ANSI code.
const US_STATES: [(&str, &str); 56] = [
    ("alabama", "al"),
    ("alaska", "ak"),
    ("arizona", "az"),
    ("arkansas", "ar"),
    ("california", "ca"),
    ("colorado", "co"),
    ("connecticut", "ct"),
    ("delaware", "de"),
    ("district of columbia", "dc"),
    ("florida", "fl"),
    ("georgia", "ga"),
    ("hawaii", "hi"),
    ("idaho", "id"),
    ("illinois", "il"),
    ("indiana", "in"),
    ("iowa", "ia"),
    ("kansas", "ks"),
    ("kentucky", "ky"),
    ("louisiana", "la"),
    ("maine", "me"),
    ("maryland", "md"),
    ("massachusetts", "ma"),
    ("michigan", "mi"),
    ("minnesota", "mn"),
    ("mississippi", "ms"),
    ("missouri", "mo"),
    ("montana", "mt"),
    ("nebraska", "ne"),
    ("nevada", "nv"),
    ("new hampshire", "nh"),
    ("new jersey", "nj"),
    ("new mexico", "nm"),
    ("new york", "ny"),
    ("north carolina", "nc"),
    ("north dakota", "nd"),
    ("ohio", "oh"),
    ("oklahoma", "ok"),
    ("oregon", "or"),
    ("pennsylvania", "pa"),
    ("rhode island", "ri"),
    ("south carolina", "sc"),
    ("south dakota", "sd"),
    ("tennessee", "tn"),
    ("texas", "tx"),
    ("utah", "ut"),
    ("vermont", "vt"),
    ("virginia", "va"),
    ("washington", "wa"),
    ("west virginia", "wv"),
    ("wisconsin", "wi"),
    ("wyoming", "wy"),
    ("puerto rico", "pr"),
    ("guam", "gu"),
    ("american samoa", "as"),
    ("northern mariana islands", "mp"),
    ("us virgin islands", "vi"),
];

/// Names and alpha-3 codes of the countries sites most often write out in full.
const COUNTRY_NAMES: [(&[&str], &str); 24] = [
    (
        &["unitedstates", "unitedstatesofamerica", "usa", "us"],
        "us",
    ),
    (
        &["unitedkingdom", "greatbritain", "gbr", "uk", "england"],
        "gb",
    ),
    (&["germany", "deutschland", "deu"], "de"),
    (&["france", "fra"], "fr"),
    (&["spain", "españa", "espana", "esp"], "es"),
    (&["italy", "italia", "ita"], "it"),
    (&["netherlands", "thenetherlands", "nederland", "nld"], "nl"),
    (&["belgium", "bel"], "be"),
    (&["switzerland", "schweiz", "suisse", "che"], "ch"),
    (&["austria", "österreich", "osterreich", "aut"], "at"),
    (&["ireland", "irl"], "ie"),
    (&["portugal", "prt"], "pt"),
    (&["sweden", "swe"], "se"),
    (&["norway", "nor"], "no"),
    (&["denmark", "dnk"], "dk"),
    (&["finland", "fin"], "fi"),
    (&["poland", "polska", "pol"], "pl"),
    (&["canada", "can"], "ca"),
    (&["mexico", "méxico", "mex"], "mx"),
    (&["brazil", "brasil", "bra"], "br"),
    (&["australia", "aus"], "au"),
    (&["newzealand", "nzl"], "nz"),
    (&["japan", "jpn"], "jp"),
    (&["india", "ind"], "in"),
];

/// ISO 3166-1 alpha-2 codes (officially assigned).
const ISO_ALPHA2: [&str; 249] = [
    "ad", "ae", "af", "ag", "ai", "al", "am", "ao", "aq", "ar", "as", "at", "au", "aw", "ax", "az",
    "ba", "bb", "bd", "be", "bf", "bg", "bh", "bi", "bj", "bl", "bm", "bn", "bo", "bq", "br", "bs",
    "bt", "bv", "bw", "by", "bz", "ca", "cc", "cd", "cf", "cg", "ch", "ci", "ck", "cl", "cm", "cn",
    "co", "cr", "cu", "cv", "cw", "cx", "cy", "cz", "de", "dj", "dk", "dm", "do", "dz", "ec", "ee",
    "eg", "eh", "er", "es", "et", "fi", "fj", "fk", "fm", "fo", "fr", "ga", "gb", "gd", "ge", "gf",
    "gg", "gh", "gi", "gl", "gm", "gn", "gp", "gq", "gr", "gs", "gt", "gu", "gw", "gy", "hk", "hm",
    "hn", "hr", "ht", "hu", "id", "ie", "il", "im", "in", "io", "iq", "ir", "is", "it", "je", "jm",
    "jo", "jp", "ke", "kg", "kh", "ki", "km", "kn", "kp", "kr", "kw", "ky", "kz", "la", "lb", "lc",
    "li", "lk", "lr", "ls", "lt", "lu", "lv", "ly", "ma", "mc", "md", "me", "mf", "mg", "mh", "mk",
    "ml", "mm", "mn", "mo", "mp", "mq", "mr", "ms", "mt", "mu", "mv", "mw", "mx", "my", "mz", "na",
    "nc", "ne", "nf", "ng", "ni", "nl", "no", "np", "nr", "nu", "nz", "om", "pa", "pe", "pf", "pg",
    "ph", "pk", "pl", "pm", "pn", "pr", "ps", "pt", "pw", "py", "qa", "re", "ro", "rs", "ru", "rw",
    "sa", "sb", "sc", "sd", "se", "sg", "sh", "si", "sj", "sk", "sl", "sm", "sn", "so", "sr", "ss",
    "st", "sv", "sx", "sy", "sz", "tc", "td", "tf", "tg", "th", "tj", "tk", "tl", "tm", "tn", "to",
    "tr", "tt", "tv", "tw", "tz", "ua", "ug", "um", "us", "uy", "uz", "va", "vc", "ve", "vg", "vi",
    "vn", "vu", "wf", "ws", "ye", "yt", "za", "zm", "zw",
];

#[cfg(test)]
mod tests {
    use super::*;

    const META: Rules<'static> = Rules {
        vendor: Vendor::Meta,
        default_calling_code: None,
    };
    const GOOGLE: Rules<'static> = Rules {
        vendor: Vendor::Google,
        default_calling_code: None,
    };

    fn n(kind: Kind, raw: &str, rules: Rules<'_>) -> String {
        normalize(kind, raw, rules).unwrap()
    }

    #[test]
    fn sha256_matches_the_fips_180_2_test_vector() {
        // FIPS 180-2, appendix B.1: SHA-256("abc").
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn meta_published_normalisation_examples() {
        // https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
        assert_eq!(
            n(Kind::Email, "  John_Smith@gmail.com ", META),
            "john_smith@gmail.com"
        );
        assert_eq!(n(Kind::Phone, "+1 (616) 954-7888", META), "16169547888");
        assert_eq!(n(Kind::City, "Menlo Park", META), "menlopark");
        assert_eq!(n(Kind::State, "California", META), "ca");
        assert_eq!(n(Kind::State, "TX", META), "tx");
        assert_eq!(n(Kind::Zip, "94025-1234", META), "94025");
        assert_eq!(n(Kind::Zip, "SW1A 1AA", META), "sw1a1aa");
        assert_eq!(n(Kind::Country, "US", META), "us");
        assert_eq!(n(Kind::Gender, "Female", META), "f");
        assert_eq!(n(Kind::DateOfBirth, "1997-02-14", META), "19970214");
        assert_eq!(n(Kind::FirstName, "Mary-Ann", META), "maryann");
        assert_eq!(n(Kind::LastName, " O'Brien ", META), "obrien");
        // Meta's rule "remove symbols, letters and any leading zeros": the 00 prefix goes.
        assert_eq!(n(Kind::Phone, "0044 844 412 4653", META), "448444124653");
    }

    #[test]
    fn meta_published_hash_examples() {
        // The worked examples (input → normalised → SHA-256) of
        // https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
        let us = Rules {
            vendor: Vendor::Meta,
            default_calling_code: Some("1"),
        };
        let cases = [
            (
                Kind::Email,
                "John_Smith@gmail.com",
                "john_smith@gmail.com",
                "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
            ),
            (
                Kind::Phone,
                "(650)555-1212",
                "16505551212",
                "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",
            ),
            (
                Kind::FirstName,
                "Mary",
                "mary",
                "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec",
            ),
            (
                Kind::DateOfBirth,
                "2/16/1997",
                "19970216",
                "01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c",
            ),
            (
                Kind::Country,
                "United States",
                "us",
                "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621",
            ),
        ];
        for (kind, input, normalised, hash) in cases {
            assert_eq!(n(kind, input, us), normalised, "{kind:?}");
            assert_eq!(hashed(kind, input, us).unwrap(), hash, "{kind:?}");
        }
    }

    #[test]
    fn google_published_normalisation_examples() {
        // https://developers.google.com/data-manager/api/get-started/formatting
        let us = Rules {
            vendor: Vendor::Google,
            default_calling_code: Some("1"),
        };
        assert_eq!(n(Kind::Phone, "(800)555-0100", us), "+18005550100");
        assert_eq!(
            n(Kind::Email, "Cloudy.SanFrancisco@gmail.com", GOOGLE),
            "cloudysanfrancisco@gmail.com"
        );
        assert_eq!(
            n(Kind::Email, "jane.doe@googlemail.com", GOOGLE),
            "janedoe@googlemail.com"
        );
        // Other domains keep their dots and plus parts.
        assert_eq!(
            n(Kind::Email, "User.Name+NYC@Example.com", GOOGLE),
            "user.name+nyc@example.com"
        );
        // Meta keeps Gmail dots (its rule is trim + lowercase only).
        assert_eq!(
            n(Kind::Email, "jane.doe@gmail.com", META),
            "jane.doe@gmail.com"
        );
    }

    #[test]
    fn hashes_are_of_the_normalised_value() {
        assert_eq!(
            hashed(Kind::Email, " Jane.Doe@Gmail.com", GOOGLE).unwrap(),
            sha256_hex("janedoe@gmail.com")
        );
        assert_eq!(
            hashed(Kind::Email, " Jane.Doe@Gmail.com", META).unwrap(),
            sha256_hex("jane.doe@gmail.com")
        );
    }

    #[test]
    fn already_hashed_values_pass_through() {
        let h = sha256_hex("someone@example.com");
        assert_eq!(hashed(Kind::Email, &h.to_uppercase(), META).unwrap(), h);
        assert_eq!(hashed(Kind::ExternalId, &h, META).unwrap(), h);
    }

    #[test]
    fn national_phone_numbers_need_a_calling_code() {
        assert_eq!(
            normalize(Kind::Phone, "(616) 954-7888", META),
            Err(IdentifierError::NoCallingCode)
        );
        let uk = Rules {
            vendor: Vendor::Meta,
            default_calling_code: Some("44"),
        };
        assert_eq!(n(Kind::Phone, "020 7946 0018", uk), "442079460018");
        let us = Rules {
            vendor: Vendor::TikTok,
            default_calling_code: Some("+1"),
        };
        assert_eq!(n(Kind::Phone, "1-616-954-7888", us), "+16169547888");
        assert_eq!(n(Kind::Phone, "616.954.7888", us), "+16169547888");
    }

    #[test]
    fn bad_values_are_typed_errors() {
        let cases = [
            (Kind::Email, "not-an-email", "identifier_not_an_email"),
            (Kind::Email, "a b@example.com", "identifier_not_an_email"),
            (Kind::Phone, "call me", "identifier_not_a_phone"),
            (Kind::Phone, "+1 23", "identifier_not_a_phone"),
            (Kind::Country, "Atlantis", "identifier_not_a_country"),
            (Kind::Country, "zz", "identifier_not_a_country"),
            (Kind::Gender, "x", "identifier_not_a_gender"),
            (Kind::DateOfBirth, "1997-02-30", "identifier_not_a_date"),
            (Kind::DateOfBirth, "03/04/1997", "identifier_not_a_date"),
            (Kind::DateOfBirth, "13/13/1997", "identifier_not_a_date"),
            (Kind::FirstName, "   ", "identifier_empty"),
            (Kind::City, "...", "identifier_empty"),
        ];
        for (kind, raw, code) in cases {
            let err = normalize(kind, raw, META).unwrap_err();
            assert_eq!(err.code(), code, "{kind:?} {raw:?}");
        }
    }

    #[test]
    fn countries_by_name_or_code() {
        assert_eq!(n(Kind::Country, "United States", META), "us");
        assert_eq!(n(Kind::Country, "DEU", META), "de");
        assert_eq!(n(Kind::Country, " fr ", META), "fr");
        assert_eq!(n(Kind::Country, "U.K.", META), "gb");
    }
}
