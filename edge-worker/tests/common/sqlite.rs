//! D1 as a real SQLite database in memory, created by the worker's own
//! migrations (`edge-worker/migrations/*.sql`, in name order), so the SQL the
//! worker writes is run, not pattern-matched. Like D1, a statement may bind
//! at most [`MAX_BOUND_PARAMS`] parameters and a batch is atomic.

use rusqlite::types::{Value as Sqlite, ValueRef};
use rusqlite::Connection;
use serde_json::{Map, Value};
use sluice_edge_worker::db::{SqlValue, Statement, MAX_BOUND_PARAMS};

pub struct Db(Connection);

impl Default for Db {
    fn default() -> Self {
        let db = Connection::open_in_memory().unwrap();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|f| f.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort();
        for file in files {
            db.execute_batch(&std::fs::read_to_string(file).unwrap())
                .unwrap();
        }
        Db(db)
    }
}

fn bound(params: &[SqlValue]) -> Result<Vec<Sqlite>, String> {
    if params.len() > MAX_BOUND_PARAMS {
        // D1's answer to such a statement.
        return Err(format!("too many SQL variables: {}", params.len()));
    }
    Ok(params
        .iter()
        .map(|p| match p {
            SqlValue::Null => Sqlite::Null,
            SqlValue::Text(t) => Sqlite::Text(t.clone()),
            SqlValue::Int(i) => Sqlite::Integer(*i),
        })
        .collect())
}

impl Db {
    /// Run the statements in one transaction: all or none.
    pub fn run(&self, statements: &[Statement]) -> Result<(), String> {
        self.0.execute_batch("BEGIN").map_err(|e| e.to_string())?;
        for s in statements {
            let result = bound(&s.params).and_then(|params| {
                self.0
                    .execute(&s.sql, rusqlite::params_from_iter(params))
                    .map_err(|e| format!("{e}: {}", s.sql))
            });
            if let Err(e) = result {
                self.0.execute_batch("ROLLBACK").unwrap();
                return Err(e);
            }
        }
        self.0.execute_batch("COMMIT").map_err(|e| e.to_string())
    }

    /// The rows as JSON objects, like D1's `results`.
    pub fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Value>, String> {
        let params = bound(params)?;
        let mut statement = self.0.prepare(sql).map_err(|e| format!("{e}: {sql}"))?;
        let names: Vec<String> = statement
            .column_names()
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        let rows = statement
            .query_map(rusqlite::params_from_iter(params), |row| {
                let mut object = Map::new();
                for (i, name) in names.iter().enumerate() {
                    let value = match row.get_ref(i)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(n) => Value::from(n),
                        ValueRef::Real(x) => Value::from(x),
                        ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t)),
                        ValueRef::Blob(b) => Value::from(b.to_vec()),
                    };
                    object.insert(name.clone(), value);
                }
                Ok(Value::Object(object))
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }
}
