//! The identity graph: which user ids and anonymous ids (devices) belong to
//! one person, read from `identity_links` (written by [`crate::identity`]).
//!
//! [`resolve`] follows links in both directions until no new id appears (at
//! most four hops), and binds the ids it has in chunks, so a person with
//! hundreds of devices is resolved in statements D1 accepts.

use super::Subject;
use crate::db;
use crate::ports::{PortError, Sql};
use serde::Serialize;

/// Every id linked to a subject: user ids and anonymous ids (devices).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identities {
    pub user_ids: Vec<String>,
    pub anonymous_ids: Vec<String>,
}

impl Identities {
    /// User ids, then anonymous ids.
    pub fn all(&self) -> Vec<String> {
        self.user_ids
            .iter()
            .chain(&self.anonymous_ids)
            .cloned()
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.user_ids.is_empty() && self.anonymous_ids.is_empty()
    }
}

/// Hops followed at most (user → devices → users → …).
const MAX_HOPS: usize = 4;

/// Add to `to` the ids linked to any of `from` (`to_col` of the rows whose
/// `from_col` is one of them); true if any was new.
async fn follow(
    db: &impl Sql,
    from_col: &str,
    to_col: &str,
    from: &[String],
    to: &mut Vec<String>,
) -> Result<bool, PortError> {
    let rows = db::query_in(db, from, 1, |m| {
        format!("SELECT DISTINCT {to_col} FROM identity_links WHERE {from_col} IN ({m})")
    })
    .await?;
    let mut grew = false;
    for id in rows.iter().filter_map(|r| r[to_col].as_str()) {
        if !to.iter().any(|x| x == id) {
            to.push(id.to_owned());
            grew = true;
        }
    }
    Ok(grew)
}

/// Follow the identity graph from the subject until no new id appears.
pub async fn resolve(db: &impl Sql, subject: &Subject) -> Result<Identities, PortError> {
    let mut ids = Identities {
        user_ids: subject.user_id.clone().into_iter().collect(),
        anonymous_ids: subject.anonymous_id.clone().into_iter().collect(),
    };
    for _ in 0..MAX_HOPS {
        let users = follow(
            db,
            "anonymous_id",
            "user_id",
            &ids.anonymous_ids,
            &mut ids.user_ids,
        )
        .await?;
        let devices = follow(
            db,
            "user_id",
            "anonymous_id",
            &ids.user_ids,
            &mut ids.anonymous_ids,
        )
        .await?;
        if !users && !devices {
            break;
        }
    }
    ids.user_ids.sort();
    ids.anonymous_ids.sort();
    Ok(ids)
}
