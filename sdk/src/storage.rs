//! Where the SDK keeps things: a first-party cookie on the registrable
//! domain (shared by subdomains), mirrored to localStorage, with a memory
//! fallback where storage is blocked (Safari private mode, sandboxed iframes).

use crate::js;
use crate::json::cat;
use crate::options::StorageMode;
use crate::prelude::*;
use wasm_bindgen::JsValue;

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

/// `document` (read through `Reflect`: `document.cookie` throws where
/// cookies are blocked, and `Reflect` turns that into `undefined`).
fn document() -> JsValue {
    js::get(&js::global(), "document")
}

/// `localStorage`, used through `Reflect` like `document` (reading it throws
/// in sandboxed iframes and with storage blocked: that is `None`).
fn local() -> Option<JsValue> {
    let s = js::get(&js::global(), "localStorage");
    s.is_object().then_some(s)
}

/// `localStorage[method](args…)`; `None` if it threw (quota, blocked).
fn local_call(method: &'static str, args: &[JsValue]) -> Option<JsValue> {
    let s = local()?;
    js::call(&js::get(&s, method), &s, args)
}

fn local_get_item(key: &str) -> Option<String> {
    local_call("getItem", &[key.into()])?.as_string()
}

/// Read a cookie from `document.cookie`.
pub fn read_cookie(name: &str) -> Option<String> {
    let cookies = js::get_str(&document(), "cookie")?;
    cookies.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
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
    let doc = document();
    if doc.is_object() {
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
        let _ = js_sys::Reflect::set(&doc, &js::st("cookie"), &c.into());
    }
}

/// The domains a cookie for `host` might be set on, shortest first:
/// `shop.example.co.uk` → `co.uk`, `example.co.uk`, `shop.example.co.uk` (the
/// browser refuses public suffixes, so the first one it accepts is the
/// registrable domain). The last label alone is never a candidate.
fn domain_candidates(host: &str) -> Vec<&str> {
    // Where each label starts.
    let mut starts: Vec<usize> = core::iter::once(0)
        .chain(
            host.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'.')
                .map(|(i, _)| i + 1),
        )
        .collect();
    starts.pop();
    starts.iter().rev().filter_map(|s| host.get(*s..)).collect()
}

/// The registrable domain: the shortest suffix of the host a cookie can be
/// set on (browsers refuse public suffixes like `co.uk`).
fn registrable_domain() -> Option<String> {
    let host = js::location("hostname")?;
    let is_ip = host.contains(':') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if is_ip || !host.contains('.') {
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
            .or_else(|| local_get_item(key))
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

    /// Store a value (always in memory; in cookie/localStorage where allowed).
    pub fn set(&mut self, key: &str, value: &str) {
        self.memory.retain(|(k, _)| k != key);
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
        local_call("setItem", &[key.into(), value.into()]);
    }

    /// Remove a value everywhere.
    pub fn remove(&mut self, key: &str) {
        self.memory.retain(|(k, _)| k != key);
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
        local_call("removeItem", &[key.into()]);
    }

    /// localStorage only (the persistent queue: too big for a cookie).
    pub fn local_get(&self, key: &str) -> Option<String> {
        if !self.enabled || matches!(self.mode, StorageMode::Memory) {
            return None;
        }
        local_get_item(key)
    }

    /// Write to localStorage; false if not allowed or it failed (quota, blocked).
    pub fn local_set(&self, key: &str, value: &str) -> bool {
        if !self.enabled || matches!(self.mode, StorageMode::Memory) {
            return false;
        }
        local_call("setItem", &[key.into(), value.into()]).is_some()
    }

    pub fn local_remove(&self, key: &str) {
        local_call("removeItem", &[key.into()]);
    }

    /// localStorage keys starting with `prefix`.
    pub fn local_keys(&self, prefix: &str) -> Vec<String> {
        let Some(s) = local().filter(|_| self.enabled) else {
            return Vec::new();
        };
        // A Storage's own keys are the stored keys.
        js_sys::Object::keys(&js_sys::Object::from(s))
            .iter()
            .filter_map(|k| k.as_string())
            .filter(|k| k.starts_with(prefix))
            .collect()
    }
}

/// A v4 UUID: `crypto.randomUUID()` where there is one (secure contexts),
/// else one made from random bytes.
pub fn uuid() -> String {
    let crypto = js::get(&js::global(), "crypto");
    js::call(&js::get(&crypto, "randomUUID"), &crypto, &[])
        .and_then(|v| v.as_string())
        .unwrap_or_else(|| uuid_from_random_bytes(&crypto))
}

/// From `crypto.getRandomValues` (`Math.random` where even that is missing).
fn uuid_from_random_bytes(crypto: &JsValue) -> String {
    let mut bytes = [0u8; 16];
    let array = js_sys::Uint8Array::new_with_length(16);
    if js::call(
        &js::get(crypto, "getRandomValues"),
        crypto,
        &[array.clone().into()],
    )
    .is_some()
    {
        array.copy_to(&mut bytes);
    } else {
        for b in &mut bytes {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    sluice_shared::id::uuid_v4(bytes)
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
