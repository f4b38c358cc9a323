//! wasm32 has no SQLite to link: the native tests are only type-checked
//! there (`clippy --target wasm32-unknown-unknown`), never run.

use serde_json::Value;
use sluice_edge_worker::db::{SqlValue, Statement};

#[derive(Default)]
pub struct Db;

impl Db {
    pub fn run(&self, _statements: &[Statement]) -> Result<(), String> {
        Err("no SQLite on wasm32".into())
    }

    pub fn query(&self, _sql: &str, _params: &[SqlValue]) -> Result<Vec<Value>, String> {
        Err("no SQLite on wasm32".into())
    }
}
