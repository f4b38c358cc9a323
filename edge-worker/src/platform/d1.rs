//! The D1 database.

use crate::sinks::d1::{Sql, SqlValue, Statement};
use wasm_bindgen::JsValue;

pub struct D1(pub worker::D1Database);

fn values(params: Vec<SqlValue>) -> Vec<JsValue> {
    params
        .into_iter()
        .map(|v| match v {
            SqlValue::Null => JsValue::NULL,
            SqlValue::Text(s) => JsValue::from_str(&s),
            SqlValue::Int(i) => JsValue::from_f64(i as f64),
        })
        .collect()
}

impl Sql for D1 {
    async fn run(&self, statements: Vec<Statement>) -> Result<(), String> {
        let mut prepared = Vec::with_capacity(statements.len());
        for s in statements {
            prepared.push(
                self.0
                    .prepare(&s.sql)
                    .bind(&values(s.params))
                    .map_err(|e| e.to_string())?,
            );
        }
        if prepared.is_empty() {
            return Ok(());
        }
        self.0
            .batch(prepared)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn query(
        &self,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<Vec<serde_json::Value>, String> {
        let stmt = self
            .0
            .prepare(sql)
            .bind(&values(params))
            .map_err(|e| e.to_string())?;
        let result = stmt.all().await.map_err(|e| e.to_string())?;
        result
            .results::<serde_json::Value>()
            .map_err(|e| e.to_string())
    }
}
