//! Admin API tokens: stored as SHA-256 hashes (`SLUICE_ADMIN_TOKENS`), compared
//! in constant time, each with scopes. Write keys can only ingest; they are
//! never admin tokens. The local development token (`dev-admin-token`, in
//! `edge-worker/.dev.vars`) is public: [`authenticate`] refuses it on any host
//! but the local machine, even if a deployment lists its hash.

use crate::error::ApiError;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fmt;

/// Var (or secret) holding the tokens.
pub const TOKENS_VAR: &str = "SLUICE_ADMIN_TOKENS";

/// SHA-256 of `dev-admin-token`, the public local development token.
pub const DEV_TOKEN_SHA256: &str =
    "1734d503f6aa6a047c36d113cbad769f719c93784b469b771c4c3e7c63adbefd";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Scope {
    #[serde(rename = "read:events")]
    ReadEvents,
    #[serde(rename = "read:profiles")]
    ReadProfiles,
    #[serde(rename = "export")]
    Export,
    #[serde(rename = "delete")]
    Delete,
    /// Everything, including the audit log.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ReadEvents => "read:events",
            Scope::ReadProfiles => "read:profiles",
            Scope::Export => "export",
            Scope::Delete => "delete",
            Scope::Admin => "admin",
        }
    }
}

/// One configured token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminToken {
    /// Who holds it (recorded in the audit log).
    pub name: String,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    pub scopes: Vec<Scope>,
}

impl AdminToken {
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|s| *s == scope || *s == Scope::Admin)
    }
}

/// Why a token list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokensError(pub String);

impl TokensError {
    pub fn code(&self) -> &'static str {
        "admin_tokens_invalid"
    }
}

impl fmt::Display for TokensError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TOKENS_VAR} is invalid: {}", self.0)
    }
}

/// Parse the token list (absent: no admin access at all).
pub fn parse(json: Option<&str>) -> Result<Vec<AdminToken>, TokensError> {
    let Some(json) = json.map(str::trim).filter(|j| !j.is_empty()) else {
        return Ok(Vec::new());
    };
    let tokens: Vec<AdminToken> =
        serde_json::from_str(json).map_err(|e| TokensError(e.to_string()))?;
    for t in &tokens {
        if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokensError(format!(
                "`{}`: sha256 must be 64 hex digits",
                t.name
            )));
        }
    }
    Ok(tokens)
}

/// Hex SHA-256 of a token.
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Constant-time string comparison (no early exit on the first difference).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The token a bearer value belongs to. Every configured hash is compared.
pub fn find<'t>(tokens: &'t [AdminToken], bearer: &str) -> Option<&'t AdminToken> {
    let h = hash(bearer);
    let mut found = None;
    for t in tokens {
        if same(&t.sha256.to_ascii_lowercase(), &h) {
            found = Some(t);
        }
    }
    found
}

/// The token of a request to `host` carrying `bearer`: unknown or empty is
/// `Unauthorized`; the public dev token outside localhost is `DevCredential`.
pub fn authenticate<'t>(
    tokens: &'t [AdminToken],
    bearer: &str,
    host: Option<&str>,
) -> Result<&'t AdminToken, ApiError> {
    if bearer.is_empty() {
        return Err(ApiError::Unauthorized);
    }
    let token = find(tokens, bearer).ok_or(ApiError::Unauthorized)?;
    if same(&token.sha256.to_ascii_lowercase(), DEV_TOKEN_SHA256)
        && !host.is_some_and(crate::http::is_local_host)
    {
        return Err(ApiError::DevCredential("the dev admin token"));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_token_only_works_on_localhost() {
        assert_eq!(hash("dev-admin-token"), DEV_TOKEN_SHA256);
        let json = format!(
            r#"[{{"name":"dev","sha256":"{DEV_TOKEN_SHA256}","scopes":["admin"]}},{{"name":"ops","sha256":"{}","scopes":["admin"]}}]"#,
            hash("ops-token")
        );
        let tokens = parse(Some(&json)).unwrap();
        let name = |bearer, host| authenticate(&tokens, bearer, host).map(|t| t.name.as_str());
        assert_eq!(name("dev-admin-token", Some("127.0.0.1:8787")), Ok("dev"));
        assert_eq!(name("dev-admin-token", Some("localhost")), Ok("dev"));
        assert_eq!(
            name("dev-admin-token", Some("sluice.example.com")),
            Err(ApiError::DevCredential("the dev admin token"))
        );
        assert_eq!(
            name("dev-admin-token", None),
            Err(ApiError::DevCredential("the dev admin token"))
        );
        assert_eq!(name("ops-token", Some("sluice.example.com")), Ok("ops"));
        assert_eq!(
            name("wrong", Some("localhost")),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(name("", Some("localhost")), Err(ApiError::Unauthorized));
    }

    #[test]
    fn tokens_are_matched_by_hash_with_scopes() {
        let json = format!(
            r#"[{{"name":"dpo","sha256":"{}","scopes":["export","delete"]}},{{"name":"analyst","sha256":"{}","scopes":["read:events"]}}]"#,
            hash("t-dpo"),
            hash("t-analyst")
        );
        let tokens = parse(Some(&json)).unwrap();
        let dpo = find(&tokens, "t-dpo").unwrap();
        assert_eq!(dpo.name, "dpo");
        assert!(dpo.allows(Scope::Delete) && !dpo.allows(Scope::ReadEvents));
        assert!(find(&tokens, "wrong").is_none());
        assert!(find(&tokens, "t-analyst")
            .unwrap()
            .allows(Scope::ReadEvents));
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bad_token_lists_fail_loudly() {
        assert!(parse(Some(r#"[{"name":"x","sha256":"short","scopes":[]}]"#)).is_err());
        assert!(parse(Some(r#"[{"name":"x","sha256":"aa","scopes":["root"]}]"#)).is_err());
        assert!(parse(None).unwrap().is_empty());
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
