//! The D1 database.

use crate::db::{SqlValue, Statement};
use crate::ports::{PortError, Sql};
use wasm_bindgen::JsValue;

pub struct D1(pub worker::D1Database);

fn failed(e: worker::Error) -> PortError {
    PortError::Unavailable(["D1: ", &e.to_string()].concat())
}

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
    async fn run(&self, statements: Vec<Statement>) -> Result<(), PortError> {
        let mut prepared = Vec::with_capacity(statements.len());
        for s in statements {
            prepared.push(
                self.0
                    .prepare(&s.sql)
                    .bind(&values(s.params))
                    .map_err(failed)?,
            );
        }
        if prepared.is_empty() {
            return Ok(());
        }
        self.0.batch(prepared).await.map(|_| ()).map_err(failed)
    }

    async fn query(
        &self,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<Vec<serde_json::Value>, PortError> {
        let stmt = self.0.prepare(sql).bind(&values(params)).map_err(failed)?;
        let result = stmt.all().await.map_err(failed)?;
        result.results::<serde_json::Value>().map_err(failed)
    }
}
