//! The admin API (`/admin/v1/…`), behind bearer tokens with scopes. Every
//! call is recorded in the audit log, refused ones included.
//!
//! | method and path | scope |
//! | --- | --- |
//! | `GET /admin/v1/profiles/{userId}`, `GET /admin/v1/profiles?anonymousId=` | `read:profiles` |
//! | `GET /admin/v1/events?userId=|anonymousId=&limit=` | `read:events` |
//! | `POST /admin/v1/requests` `{type: access, userId|anonymousId}` | `export` |
//! | `POST /admin/v1/requests` `{type: delete|suppress|opt_out, …}` | `delete` |
//! | `GET /admin/v1/requests/{id}` | `export` or `delete` |
//! | `GET /admin/v1/requests/{id}/export` | `export` |
//! | `GET /admin/v1/audit?limit=` | `admin` |
//! | `GET /admin/v1/deliveries` (per destination: the last hour and day, see [`crate::delivery::overview`]) | `read:events` |
//! | `GET /admin/v1/status` (D1's hot window: mode, size, capacity, warning) | `read:events` |
//! | `POST /admin/v1/audiences/backfill` `{definitions: [..]}` or `{all: true}`, optional `from` / `until` | `admin` |
//! | `GET /admin/v1/audiences/backfill/{id}` (status, objects and events done, errors) | `admin` |

pub mod tokens;

use crate::db::{text_value, SqlValue, Statement};
use crate::error::ApiError;
use crate::http::{HttpRequest, HttpResponse};
use crate::ports::Platform;
use crate::privacy::{self, JobMessage, JobStatus, RequestType, Subject};
use crate::services::Services;
use serde::Deserialize;
use serde_json::{json, Value};
use tokens::{AdminToken, Scope};

/// Handle `/admin/v1/…`.
pub async fn handle<P: Platform>(
    req: &HttpRequest,
    s: &Services<'_, P>,
) -> Result<HttpResponse, ApiError> {
    let action = [req.method.as_str(), " ", req.path.as_str()].concat();
    let token = authenticated(req, s, &action, "").await?;
    let result = route(req, s, token).await;
    audited(s, token, &action, &req.query, result).await
}

/// The admin token the request carries (`Authorization: Bearer …`). A
/// refused one is recorded in the audit log as `(unauthenticated)`, under
/// `subject`, and returned as the error.
pub async fn authenticated<'c, P: Platform>(
    req: &HttpRequest,
    s: &Services<'c, P>,
    action: &str,
    subject: &str,
) -> Result<&'c AdminToken, ApiError> {
    let bearer = req
        .header("authorization")
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or_default();
    match tokens::authenticate(&s.config.admin_tokens, bearer, req.header("host")) {
        Ok(token) => Ok(token),
        Err(refused) => {
            let _ = privacy::audit(
                s.platform,
                s.now,
                "(unauthenticated)",
                action,
                subject,
                refused.code(),
                0,
            )
            .await;
            Err(refused)
        }
    }
}

/// Record in the audit log what `token`'s request came to (its status or
/// error code), and pass the result on.
pub async fn audited<P: Platform>(
    s: &Services<'_, P>,
    token: &AdminToken,
    action: &str,
    subject: &str,
    result: Result<HttpResponse, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let outcome = match &result {
        Ok(r) => r.status.to_string(),
        Err(e) => e.code().to_owned(),
    };
    let _ = privacy::audit(s.platform, s.now, &token.name, action, subject, &outcome, 0).await;
    result
}

fn need(token: &AdminToken, scope: Scope) -> Result<(), ApiError> {
    if token.allows(scope) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(scope.as_str()))
    }
}

fn unavailable(e: impl Into<ApiError>) -> ApiError {
    e.into()
}

fn subject_from_query(req: &HttpRequest) -> Result<Subject, ApiError> {
    let subject = Subject {
        user_id: req.query_param("userId"),
        anonymous_id: req.query_param("anonymousId"),
    };
    if subject.user_id.is_none() && subject.anonymous_id.is_none() {
        return Err(ApiError::BadRequest("give userId or anonymousId".into()));
    }
    Ok(subject)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewRequest {
    #[serde(rename = "type")]
    kind: RequestType,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    anonymous_id: Option<String>,
}

async fn route<P: Platform>(
    req: &HttpRequest,
    s: &Services<'_, P>,
    token: &AdminToken,
) -> Result<HttpResponse, ApiError> {
    let path = req
        .path
        .trim_start_matches("/admin/v1")
        .trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let db = s.platform;
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["profiles", user]) => {
            need(token, Scope::ReadProfiles)?;
            let subject = Subject {
                user_id: Some(sluice_shared::enrich::url::decode(user)),
                anonymous_id: None,
            };
            profile_response(privacy::profile(db, &subject).await.map_err(unavailable)?)
        }
        ("GET", ["profiles"]) => {
            need(token, Scope::ReadProfiles)?;
            let subject = subject_from_query(req)?;
            profile_response(privacy::profile(db, &subject).await.map_err(unavailable)?)
        }
        ("GET", ["status"]) => {
            need(token, Scope::ReadEvents)?;
            let size = db.size_bytes().await.map_err(unavailable)?;
            Ok(HttpResponse::json(
                200,
                &json!({"d1": s.config.d1.status(size)}),
            ))
        }
        ("GET", ["events"]) => {
            need(token, Scope::ReadEvents)?;
            let subject = subject_from_query(req)?;
            let limit = req
                .query_param("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(100)
                .min(1000);
            let ids = privacy::resolve(db, &subject).await.map_err(unavailable)?;
            let events = privacy::events(db, &ids, limit)
                .await
                .map_err(unavailable)?;
            Ok(HttpResponse::json(
                200,
                &json!({"subject": ids, "events": events}),
            ))
        }
        ("POST", ["requests"]) => {
            let body: NewRequest = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::BadRequest(format!("request body: {e}")))?;
            need(
                token,
                if body.kind == RequestType::Access {
                    Scope::Export
                } else {
                    Scope::Delete
                },
            )?;
            let subject = Subject {
                user_id: body.user_id,
                anonymous_id: body.anonymous_id,
            };
            if subject.user_id.is_none() && subject.anonymous_id.is_none() {
                return Err(ApiError::BadRequest("give userId or anonymousId".into()));
            }
            let id = s.platform.new_uuid();
            let now = s.now.to_rfc3339();
            let subject_json = serde_json::to_string(&subject).unwrap_or_default();
            db.run(vec![Statement::new(
                "INSERT INTO dsr_requests (id, type, subject, status, actor, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                vec![text_value(&id), text_value(body.kind.as_str()), text_value(&subject_json), text_value(JobStatus::Pending.as_str()), text_value(&token.name), text_value(&now)],
            )])
            .await
            .map_err(unavailable)?;
            let message = serde_json::to_string(&JobMessage {
                request_id: id.clone(),
            })
            .unwrap_or_default();
            s.platform.enqueue_job(message).await.map_err(unavailable)?;
            let _ = privacy::audit(
                db,
                s.now,
                &token.name,
                &["request ", body.kind.as_str()].concat(),
                &id,
                JobStatus::Pending.as_str(),
                0,
            )
            .await;
            Ok(HttpResponse::json(
                202,
                &json!({"id": id, "type": body.kind, "status": JobStatus::Pending, "subject": subject}),
            ))
        }
        ("GET", ["requests", id]) => {
            if !token.allows(Scope::Export) && !token.allows(Scope::Delete) {
                return Err(ApiError::Forbidden("export or delete"));
            }
            let rows = db
                .query(
                    "SELECT * FROM dsr_requests WHERE id = ?1",
                    vec![text_value(id)],
                )
                .await
                .map_err(unavailable)?;
            let r = rows.into_iter().next().ok_or(ApiError::NotFound)?;
            let parse = |v: &Value| {
                v.as_str()
                    .and_then(|t| serde_json::from_str::<Value>(t).ok())
                    .unwrap_or(Value::Null)
            };
            let status = r["status"].as_str().and_then(JobStatus::parse);
            Ok(HttpResponse::json(
                200,
                &json!({"id": r["id"], "type": r["type"], "status": status, "subject": parse(&r["subject"]), "actor": r["actor"],
                        "createdAt": r["created_at"], "updatedAt": r["updated_at"], "result": parse(&r["result"]), "error": r["error"]}),
            ))
        }
        ("GET", ["requests", id, "export"]) => {
            need(token, Scope::Export)?;
            let body = db
                .get(&privacy::export_key(id))
                .await
                .map_err(unavailable)?
                .ok_or(ApiError::NotFound)?;
            Ok(HttpResponse {
                status: 200,
                headers: vec![],
                body,
            }
            .with_header("content-type", "application/json")
            .with_header(
                "content-disposition",
                format!("attachment; filename=\"sluice-export-{id}.json\""),
            ))
        }
        ("GET", ["deliveries"]) => {
            need(token, Scope::ReadEvents)?;
            use crate::delivery::overview;
            let rows = db
                .query(
                    overview::READ,
                    vec![text_value(&overview::since(s.now, overview::DAY_BUCKETS))],
                )
                .await
                .map_err(unavailable)?;
            let names: Vec<(&str, &str)> = s
                .destinations
                .iter()
                .map(|d| (d.name.as_str(), d.kind.name()))
                .collect();
            Ok(HttpResponse::json(
                200,
                &overview::summarise(&rows, &names, s.now),
            ))
        }
        ("POST", ["audiences", "backfill"]) => {
            need(token, Scope::Admin)?;
            let job = crate::audience::backfill::create(
                s.platform,
                s.config,
                s.destinations,
                &req.body,
                &token.name,
            )
            .await?;
            Ok(HttpResponse::json(202, &job))
        }
        ("GET", ["audiences", "backfill", id]) => {
            need(token, Scope::Admin)?;
            let job = crate::audience::backfill::status(db, id)
                .await
                .map_err(unavailable)?;
            profile_response(job)
        }
        ("GET", ["audit"]) => {
            need(token, Scope::Admin)?;
            let limit = req
                .query_param("limit")
                .and_then(|l| l.parse::<i64>().ok())
                .unwrap_or(100)
                .clamp(1, 1000);
            let rows = db
                .query(
                    "SELECT * FROM audit_log ORDER BY id DESC LIMIT ?1",
                    vec![SqlValue::Int(limit)],
                )
                .await
                .map_err(unavailable)?;
            Ok(HttpResponse::json(200, &json!({"entries": rows})))
        }
        _ => Err(ApiError::NotFound),
    }
}

fn profile_response(profile: Option<Value>) -> Result<HttpResponse, ApiError> {
    profile
        .map(|p| HttpResponse::json(200, &p))
        .ok_or(ApiError::NotFound)
}
