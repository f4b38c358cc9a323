//! The visitor's anonymousId: a UUID v4 kept in a first-party cookie, mirrored to localStorage.

use wasm_bindgen::JsCast;

const KEY: &str = "sluice_aid";
/// One year, in seconds.
const COOKIE_MAX_AGE_S: u32 = 31_536_000;

/// The stored anonymousId, or a new one (which is then stored).
pub fn anonymous_id(window: &web_sys::Window) -> String {
    if let Some(id) = read_cookie(window).or_else(|| read_local(window)) {
        if sluice_shared::id::is_uuid(&id) {
            persist(window, &id);
            return id;
        }
    }
    let id = new_uuid(window);
    persist(window, &id);
    id
}

/// A fresh UUID v4 from `crypto.getRandomValues`.
pub fn new_uuid(window: &web_sys::Window) -> String {
    let mut bytes = [0u8; 16];
    if let Ok(crypto) = window.crypto() {
        // Only fails if the array is over 64 KiB; ours is 16 bytes.
        let _ = crypto.get_random_values_with_u8_array(&mut bytes);
    }
    sluice_shared::id::uuid_v4(bytes)
}

fn persist(window: &web_sys::Window, id: &str) {
    if let Some(doc) = html_document(window) {
        let cookie = [
            KEY,
            "=",
            id,
            "; Path=/; Max-Age=",
            &COOKIE_MAX_AGE_S.to_string(),
            "; SameSite=Lax",
        ]
        .concat();
        let _ = doc.set_cookie(&cookie);
    }
    if let Ok(Some(storage)) = window.local_storage() {
        let _ = storage.set_item(KEY, id);
    }
}

fn read_cookie(window: &web_sys::Window) -> Option<String> {
    let cookies = html_document(window)?.cookie().ok()?;
    cookies.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == KEY).then(|| v.to_owned())
    })
}

fn read_local(window: &web_sys::Window) -> Option<String> {
    window.local_storage().ok()??.get_item(KEY).ok()?
}

fn html_document(window: &web_sys::Window) -> Option<web_sys::HtmlDocument> {
    window.document()?.dyn_into::<web_sys::HtmlDocument>().ok()
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn window() -> web_sys::Window {
        web_sys::window().expect("a browser window")
    }

    #[wasm_bindgen_test]
    fn the_anonymous_id_is_a_uuid_kept_in_cookie_and_local_storage() {
        let w = window();
        let first = anonymous_id(&w);
        assert!(sluice_shared::id::is_uuid(&first), "{first}");
        assert_eq!(read_cookie(&w).as_deref(), Some(first.as_str()));
        assert_eq!(read_local(&w).as_deref(), Some(first.as_str()));
        assert_eq!(anonymous_id(&w), first, "the stored id is reused");
    }

    #[wasm_bindgen_test]
    fn an_id_surviving_only_in_local_storage_is_restored_to_the_cookie() {
        let w = window();
        let id = anonymous_id(&w);
        let doc = html_document(&w).expect("document");
        doc.set_cookie("sluice_aid=; Path=/; Max-Age=0")
            .expect("cookie write");
        assert_eq!(read_cookie(&w), None);
        assert_eq!(anonymous_id(&w), id);
        assert_eq!(read_cookie(&w).as_deref(), Some(id.as_str()));
    }

    #[wasm_bindgen_test]
    fn fresh_ids_differ() {
        let w = window();
        assert_ne!(new_uuid(&w), new_uuid(&w));
    }
}
