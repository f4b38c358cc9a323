//! The D1 database.

use super::meter;
use crate::db::{SqlValue, Statement};
use crate::ports::{PortError, Sql};
use sluice_shared::cost::Meter;
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
        for r in &self.batch(statements).await? {
            metered(r);
        }
        Ok(())
    }

    async fn query(
        &self,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<Vec<serde_json::Value>, PortError> {
        let stmt = self.0.prepare(sql).bind(&values(params)).map_err(failed)?;
        let result = stmt.all().await.map_err(failed)?;
        metered(&result);
        result.results::<serde_json::Value>().map_err(failed)
    }
}

impl D1 {
    /// Run statements without counting them (the meter's own flush).
    pub async fn run_unmetered(&self, statements: Vec<Statement>) -> Result<(), PortError> {
        self.batch(statements).await.map(|_| ())
    }

    /// Prepare and run statements as one batch (none: nothing to run).
    async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<worker::D1Result>, PortError> {
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
            return Ok(Vec::new());
        }
        self.0.batch(prepared).await.map_err(failed)
    }

    /// The database's size now: the last one a statement reported, else a
    /// trivial query's `meta.size_after`.
    pub async fn size_bytes(&self) -> Result<Option<u64>, PortError> {
        if let Some(size) = meter::d1_size() {
            return Ok(Some(size));
        }
        let result = self.0.prepare("SELECT 1").all().await.map_err(failed)?;
        metered(&result);
        Ok(meter::d1_size())
    }
}

/// Count what D1 reports a statement read and wrote, and keep its size.
fn metered(result: &worker::D1Result) {
    if let Ok(Some(meta)) = result.meta() {
        meter::add(Meter::D1RowsRead, meta.rows_read.unwrap_or(0) as u64);
        meter::add(Meter::D1RowsWritten, meta.rows_written.unwrap_or(0) as u64);
        meter::saw_d1_size(meta.size_after);
    }
}
