//! The D1 database.

use crate::sinks::d1::{Sql, SqlValue};
use wasm_bindgen::JsValue;

pub struct D1(pub worker::D1Database);

impl Sql for D1 {
    async fn batch(&self, sql: &str, rows: Vec<Vec<SqlValue>>) -> Result<(), String> {
        let mut statements = Vec::with_capacity(rows.len());
        for row in rows {
            let values: Vec<JsValue> = row
                .into_iter()
                .map(|v| match v {
                    SqlValue::Null => JsValue::NULL,
                    SqlValue::Text(s) => JsValue::from_str(&s),
                    SqlValue::Int(i) => JsValue::from_f64(i as f64),
                })
                .collect();
            statements.push(
                self.0
                    .prepare(sql)
                    .bind(&values)
                    .map_err(|e| e.to_string())?,
            );
        }
        self.0
            .batch(statements)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
