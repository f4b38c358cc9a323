//! SQL as the pure code writes it: values, statements, placeholders, and
//! D1's limit of 100 bound parameters per statement applied in one place.
//!
//! Every caller that binds a list of ids (suppressions, the identity graph,
//! exports, deletion) goes through [`chunks`] / [`query_in`], so a person with
//! hundreds of linked ids never produces a statement D1 refuses.

use crate::ports::{PortError, Sql};
pub use crate::ports::{SqlValue, Statement};
use serde_json::Value;

/// D1's limit of bound parameters per statement.
pub const MAX_BOUND_PARAMS: usize = 100;

/// A text parameter.
pub fn text_value(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

/// A text parameter, or `NULL`.
pub fn opt_text(v: Option<&str>) -> SqlValue {
    v.map_or(SqlValue::Null, text_value)
}

/// Text parameters for ids.
pub fn texts(ids: &[String]) -> Vec<SqlValue> {
    ids.iter().map(|i| text_value(i)).collect()
}

/// `?,?,…` for `n` parameters.
pub fn marks(n: usize) -> String {
    let mut out = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        out.push('?');
    }
    out
}

/// Split `ids` so that a statement binding each chunk `copies` times, plus
/// `fixed` other parameters, stays within [`MAX_BOUND_PARAMS`].
pub fn chunks<T>(ids: &[T], copies: usize, fixed: usize) -> std::slice::Chunks<'_, T> {
    let per = (MAX_BOUND_PARAMS.saturating_sub(fixed) / copies.max(1)).max(1);
    ids.chunks(per)
}

/// One statement per chunk of `ids`: `sql(marks)` with the chunk bound
/// `copies` times (e.g. `user_id IN ({m}) OR anonymous_id IN ({m})` is 2).
pub fn statements_in(
    ids: &[String],
    copies: usize,
    sql: impl Fn(&str) -> String,
) -> Vec<Statement> {
    chunks(ids, copies, 0)
        .map(|chunk| Statement {
            sql: sql(&marks(chunk.len())),
            params: (0..copies).flat_map(|_| texts(chunk)).collect(),
        })
        .collect()
}

/// The rows of `sql(marks)` over every chunk of `ids`, concatenated (in chunk
/// order; callers that need one order sort the result).
pub async fn query_in(
    db: &impl Sql,
    ids: &[String],
    copies: usize,
    sql: impl Fn(&str) -> String,
) -> Result<Vec<Value>, PortError> {
    let mut rows = Vec::new();
    for statement in statements_in(ids, copies, sql) {
        rows.extend(db.query(&statement.sql, statement.params).await?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_every_statement_within_the_parameter_limit() {
        let ids: Vec<String> = (0..250).map(|i| i.to_string()).collect();
        let statements = statements_in(&ids, 2, |m| format!("a IN ({m}) OR b IN ({m})"));
        assert_eq!(statements.len(), 5);
        assert!(statements
            .iter()
            .all(|s| s.params.len() <= MAX_BOUND_PARAMS));
        let bound: usize = statements.iter().map(|s| s.params.len()).sum();
        assert_eq!(bound, 500, "every id bound twice, none lost");
        assert_eq!(statements[0].sql.matches('?').count(), 100);
        assert_eq!(marks(3), "?,?,?");
        assert_eq!(chunks(&ids, 1, 10).next().map(<[String]>::len), Some(90));
    }
}
