//! Where the SDK keeps things: a first-party cookie on the registrable
//! domain (shared by subdomains), mirrored to localStorage, with a memory
//! fallback where storage is blocked (Safari private mode, sandboxed iframes).

use crate::host;
use crate::js;
use crate::json::cat;
use crate::options::StorageMode;
use crate::prelude::*;
use sluice_shared::text::{has, split, split_once};

/// One year, in seconds.
const COOKIE_MAX_AGE_S: &str = "31536000";

/// The storage the SDK writes to.
pub struct Store {
    mode: StorageMode,
    /// Writing is allowed (cookieless mode: only after storage consent).
    enabled: bool,
    cookie_domain: Option<String>,
    same_site: String,
    secure: bool,
    /// A few small values (ids, session, consent): a list beats a map in code size.
    memory: Vec<(String, String)>,
}

/// Read a cookie from `document.cookie`.
pub fn read_cookie(name: &str) -> Option<String> {
    let cookies = host::cookies()?;
    split(&cookies, b';').find_map(|c| {
        let (k, v) = split_once(c.trim_ascii(), b'=')?;
        (k == name && !v.is_empty()).then(|| v.to_owned())
    })
}

fn write_cookie(
    name: &str,
    value: &str,
    max_age: &str,
    domain: Option<&str>,
    same_site: &str,
    secure: bool,
) {
    {
        let mut c = cat(&[
            name,
            "=",
            value,
            "; Path=/; Max-Age=",
            max_age,
            "; SameSite=",
            same_site,
        ]);
        if let Some(d) = domain {
            c.push_str("; Domain=");
            c.push_str(d);
        }
        if secure {
            c.push_str("; Secure");
        }
        host::set_cookie(&c);
    }
}

/// The domains a cookie for `host` might be set on, shortest first:
/// `shop.example.co.uk` → `co.uk`, `example.co.uk`, `shop.example.co.uk` (the
/// browser refuses public suffixes, so the first one it accepts is the
/// registrable domain). The last label alone is never a candidate.
fn domain_candidates(host: &str) -> Vec<&str> {
    // The suffix after each dot but the last one, from the end back, then
    // the whole host (a loop: `collect` brings its own growth code).
    let (mut out, mut dots) = (Vec::new(), 0);
    for (i, b) in host.bytes().enumerate().rev() {
        if b == b'.' {
            if dots > 0 {
                out.push(host.get(i + 1..).unwrap_or_default());
            }
            dots += 1;
        }
    }
    if dots > 0 {
        out.push(host);
    }
    out
}

/// The registrable domain: the shortest suffix of the host a cookie can be
/// set on (browsers refuse public suffixes like `co.uk`).
fn registrable_domain() -> Option<String> {
    let host = js::location("hostname")?;
    let is_ip = has(&host, b':') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if is_ip || !has(&host, b'.') {
        return None; // IPs and localhost: host-only cookies
    }
    for candidate in domain_candidates(&host) {
        write_cookie("sluice_probe", "1", "10", Some(candidate), "Lax", false);
        let ok = read_cookie("sluice_probe").is_some();
        write_cookie("sluice_probe", "", "0", Some(candidate), "Lax", false);
        if ok {
            return Some(candidate.to_owned());
        }
    }
    None
}

impl Store {
    pub fn new(
        mode: StorageMode,
        cookie_domain: Option<String>,
        same_site: String,
        secure: Option<bool>,
    ) -> Store {
        let https = js::location("protocol").is_some_and(|p| p == "https:");
        let enabled = mode != StorageMode::None;
        let cookie_domain = if mode == StorageMode::Cookie && enabled {
            cookie_domain.or_else(registrable_domain)
        } else {
            cookie_domain
        };
        Store {
            mode,
            enabled,
            cookie_domain,
            same_site,
            secure: secure.unwrap_or(https),
            memory: Vec::new(),
        }
    }

    /// Cookieless mode: start (or stop) writing once storage consent is known.
    pub fn set_enabled(&mut self, enabled: bool) {
        if self.mode == StorageMode::None {
            let was = self.enabled;
            self.enabled = enabled;
            if enabled && !was {
                // Move what was held in memory to localStorage.
                let held = core::mem::take(&mut self.memory);
                for (k, v) in held {
                    self.set(&k, &v);
                }
            }
        }
    }

    pub fn writes_allowed(&self) -> bool {
        self.enabled
    }

    /// A value, from the cookie first (shared across subdomains), then localStorage, then memory.
    pub fn get(&self, key: &str) -> Option<String> {
        let from_storage = if self.enabled && self.mode != StorageMode::Memory {
            (if self.mode == StorageMode::Cookie {
                read_cookie(key)
            } else {
                None
            })
            .or_else(|| host::ls_get(key))
        } else {
            None
        };
        from_storage.or_else(|| {
            self.memory
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        })
    }

    /// Drop `key` from memory (it is there at most once; the order of the
    /// list does not matter, and `swap_remove` is smaller Wasm than `retain`).
    fn forget(&mut self, key: &str) {
        if let Some(i) = self.memory.iter().position(|(k, _)| k == key) {
            self.memory.swap_remove(i);
        }
    }

    /// Store a value (always in memory; in cookie/localStorage where allowed).
    pub fn set(&mut self, key: &str, value: &str) {
        self.forget(key);
        self.memory.push((key.to_owned(), value.to_owned()));
        if !self.enabled || self.mode == StorageMode::Memory {
            return;
        }
        if self.mode == StorageMode::Cookie {
            write_cookie(
                key,
                value,
                COOKIE_MAX_AGE_S,
                self.cookie_domain.as_deref(),
                &self.same_site,
                self.secure,
            );
        }
        host::ls_set(key, value);
    }

    /// Remove a value everywhere.
    pub fn remove(&mut self, key: &str) {
        self.forget(key);
        if self.mode == StorageMode::Cookie {
            write_cookie(
                key,
                "",
                "0",
                self.cookie_domain.as_deref(),
                &self.same_site,
                self.secure,
            );
        }
        host::ls_remove(key);
    }

    /// localStorage only (the persistent queue: too big for a cookie).
    pub fn local_get(&self, key: &str) -> Option<String> {
        if !self.enabled || matches!(self.mode, StorageMode::Memory) {
            return None;
        }
        host::ls_get(key)
    }

    /// Write to localStorage; false if not allowed or it failed (quota, blocked).
    pub fn local_set(&self, key: &str, value: &str) -> bool {
        if !self.enabled || matches!(self.mode, StorageMode::Memory) {
            return false;
        }
        host::ls_set(key, value)
    }

    pub fn local_remove(&self, key: &str) {
        host::ls_remove(key);
    }

    /// localStorage keys starting with `prefix`.
    pub fn local_keys(&self, prefix: &str) -> Vec<String> {
        if !self.enabled {
            return Vec::new();
        }
        let mut keys = Vec::new();
        for k in split(&host::ls_keys(prefix), b'\n').filter(|k| !k.is_empty()) {
            keys.push(k.to_owned());
        }
        keys
    }
}

/// A v4 UUID (`crypto.randomUUID()`, or one made from
/// `crypto.getRandomValues` outside secure contexts).
pub fn uuid() -> String {
    host::uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_domains_are_tried_shortest_first() {
        assert_eq!(
            domain_candidates("shop.example.co.uk"),
            ["co.uk", "example.co.uk", "shop.example.co.uk"]
        );
        assert_eq!(domain_candidates("example.com"), ["example.com"]);
        assert!(domain_candidates("localhost").is_empty());
    }
}
