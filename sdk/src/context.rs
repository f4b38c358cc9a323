//! Context collected automatically for every event.

use serde_json::{Map, Value};

/// `context.page` and `context.library`.
pub fn collect(window: &web_sys::Window) -> Map<String, Value> {
    let mut page = Map::new();
    if let Some(doc) = window.document() {
        let location = window.location();
        if let Ok(href) = location.href() {
            page.insert("url".into(), href.into());
        }
        if let Ok(path) = location.pathname() {
            page.insert("path".into(), path.into());
        }
        if let Ok(search) = location.search() {
            page.insert("search".into(), search.into());
        }
        page.insert("title".into(), doc.title().into());
        page.insert("referrer".into(), doc.referrer().into());
    }
    let mut library = Map::new();
    library.insert("name".into(), "sluice.js".into());
    library.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    let mut ctx = Map::new();
    ctx.insert("page".into(), Value::Object(page));
    ctx.insert("library".into(), Value::Object(library));
    ctx
}
