//! Segment's e-commerce spec as Braze's recommended eCommerce events
//! (`ecommerce.order_placed`, …), with the fields Braze's schema requires.

use crate::{Event, Object};
use serde_json::Value;

fn text<'a>(o: &'a Object, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| o.get(*k)?.as_str().filter(|s| !s.is_empty()))
}

fn number(o: &Object, keys: &[&str]) -> Option<Value> {
    keys.iter()
        .find_map(|k| o.get(*k).filter(|v| v.is_number()).cloned())
}

fn need<T>(v: Option<T>, what: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("Braze eCommerce events need {what}"))
}

/// One line item: `product_id`, `product_name`, `variant_id` (Segment's
/// `variant`, else the `sku`, else the product id), `quantity`, `price`.
fn product(p: &Object, n: &str) -> Result<Object, String> {
    let id = need(
        text(p, &["product_id", "sku", "id"]),
        &format!("{n}product_id"),
    )?;
    let mut out = Object::new();
    out.insert("product_id".into(), id.into());
    out.insert(
        "product_name".into(),
        need(text(p, &["name", "product_name"]), &format!("{n}name"))?.into(),
    );
    out.insert(
        "variant_id".into(),
        text(p, &["variant", "variant_id", "sku"])
            .unwrap_or(id)
            .into(),
    );
    out.insert(
        "quantity".into(),
        p.get("quantity")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .into(),
    );
    out.insert(
        "price".into(),
        need(number(p, &["price"]), &format!("{n}price"))?,
    );
    for (from, to) in [("image_url", "image_url"), ("url", "product_url")] {
        if let Some(v) = text(p, &[from]) {
            out.insert(to.into(), v.into());
        }
    }
    Ok(out)
}

fn products(props: &Object) -> Result<Vec<Value>, String> {
    let list = need(
        props
            .get("products")
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty()),
        "a non-empty products array",
    )?;
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            let p = need(p.as_object(), &format!("products[{i}] to be an object"))?;
            product(p, &format!("products[{i}].")).map(Value::from)
        })
        .collect()
}

/// `(Braze event name, its properties)` for a Segment e-commerce event,
/// `None` when the event is not one of them.
pub fn event(
    event: &Event,
    name: &str,
    props: &Object,
) -> Result<Option<(&'static str, Object)>, String> {
    let braze = match name {
        "Product Viewed" => "ecommerce.product_viewed",
        "Checkout Started" => "ecommerce.checkout_started",
        "Order Completed" => "ecommerce.order_placed",
        "Order Refunded" => "ecommerce.order_refunded",
        "Order Cancelled" => "ecommerce.order_cancelled",
        _ => return Ok(None),
    };
    let currency =
        text(props, &["currency"]).map_or_else(|| "USD".to_owned(), str::to_ascii_uppercase);
    let source = text(props, &["source"]).unwrap_or(
        if event
            .context
            .as_ref()
            .is_some_and(|c| c.contains_key("page"))
        {
            "web"
        } else {
            "server"
        },
    );
    let mut out = if braze == "ecommerce.product_viewed" {
        let mut p = product(props, "")?;
        p.remove("quantity");
        p
    } else {
        let mut o = Object::new();
        let id_key = if braze == "ecommerce.checkout_started" {
            "checkout_id"
        } else {
            "order_id"
        };
        let id = need(text(props, &[id_key, "order_id", "checkout_id"]), id_key)?;
        o.insert(id_key.into(), id.into());
        if let Some(cart) = text(props, &["cart_id"]) {
            o.insert("cart_id".into(), cart.into());
        }
        o.insert(
            "total_value".into(),
            need(
                number(props, &["total", "revenue", "value"]),
                "total or revenue",
            )?,
        );
        if let Some(d) = number(props, &["discount"]) {
            o.insert("total_discounts".into(), d);
        }
        for k in ["subtotal", "tax", "shipping"] {
            if let Some(v) = number(props, &[k]) {
                let key = if k == "subtotal" { "subtotal_value" } else { k };
                o.insert(key.into(), v);
            }
        }
        o.insert("products".into(), products(props)?.into());
        o
    };
    out.insert("currency".into(), currency.into());
    out.insert("source".into(), source.into());
    Ok(Some((braze, out)))
}
