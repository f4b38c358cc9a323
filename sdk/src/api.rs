//! The JavaScript surface: `load`, `track`, `page`, `anonymousId`.

use crate::{context, identity, state, transport};
use serde::Serialize;
use serde_json::{Map, Value};
use sluice_shared::{Batch, Event, EventType};
use wasm_bindgen::prelude::*;

fn window() -> Result<web_sys::Window, JsError> {
    web_sys::window().ok_or_else(|| JsError::new("sluice needs a browser window"))
}

/// Initialise the SDK with the source's write key.
#[wasm_bindgen]
pub fn load(write_key: String) -> Result<(), JsError> {
    if write_key.is_empty() {
        return Err(JsError::new("write key is empty"));
    }
    let window = window()?;
    let anonymous_id = identity::anonymous_id(&window);
    state::set(state::Sdk {
        write_key,
        api_base: "/v1".into(),
        anonymous_id,
    });
    Ok(())
}

/// The visitor's anonymousId (after `load`).
#[wasm_bindgen(js_name = anonymousId)]
pub fn anonymous_id() -> Option<String> {
    state::with(|s| s.anonymous_id.clone())
}

/// Record a user action.
#[wasm_bindgen]
pub fn track(event: String, properties: JsValue, timestamp: Option<f64>) -> Result<(), JsError> {
    let mut ev = new_event(EventType::Track, properties, timestamp)?;
    ev.event = Some(event);
    send(ev)
}

/// Record a page view.
#[wasm_bindgen]
pub fn page(
    name: Option<String>,
    properties: JsValue,
    timestamp: Option<f64>,
) -> Result<(), JsError> {
    let mut ev = new_event(EventType::Page, properties, timestamp)?;
    ev.name = name;
    send(ev)
}

fn iso(ms: Option<f64>) -> String {
    let date = match ms {
        Some(ms) => js_sys::Date::new(&JsValue::from_f64(ms)),
        None => js_sys::Date::new_0(),
    };
    date.to_iso_string().into()
}

fn new_event(
    kind: EventType,
    properties: JsValue,
    timestamp: Option<f64>,
) -> Result<Event, JsError> {
    let window = window()?;
    let anonymous_id = state::with(|s| s.anonymous_id.clone())
        .ok_or_else(|| JsError::new("call sluice.load(writeKey) first"))?;
    let properties: Option<Map<String, Value>> = if properties.is_undefined()
        || properties.is_null()
    {
        None
    } else {
        Some(serde_wasm_bindgen::from_value(properties).map_err(|e| JsError::new(&e.to_string()))?)
    };
    let mut event = Event::new(kind, identity::new_uuid(&window));
    event.anonymous_id = Some(anonymous_id);
    event.properties = properties;
    event.timestamp = Some(iso(timestamp));
    event.context = Some(context::collect(&window));
    Ok(event)
}

fn send(event: Event) -> Result<(), JsError> {
    let window = window()?;
    let (url, key) = state::with(|s| {
        (
            [s.api_base.as_str(), "/batch"].concat(),
            s.write_key.clone(),
        )
    })
    .ok_or_else(|| JsError::new("call sluice.load(writeKey) first"))?;
    let batch = Batch {
        batch: vec![event],
        sent_at: Some(iso(None)),
        write_key: None,
        context: None,
        integrations: None,
        extra: Map::new(),
    };
    let value = batch
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()))?;
    let body: String = js_sys::JSON::stringify(&value)
        .map_err(|_| JsError::new("event is not serialisable"))?
        .into();
    let promise =
        transport::send(&window, &url, &key, &body).map_err(|_| JsError::new("fetch failed"))?;
    // Delivery failures are not the page's problem: observe and drop the rejection.
    wasm_bindgen_futures::spawn_local(async move {
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    });
    Ok(())
}
