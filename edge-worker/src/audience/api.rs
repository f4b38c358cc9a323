//! `GET /v1/profiles/{id}`: a person's computed traits and audiences with
//! when each last changed, for servers (a bearer token with
//! `read:profiles`; every call is audited). `id` is a user id or an
//! anonymous id; a device linked to a user reads the user's state.

use crate::admin::{self, tokens::Scope};
use crate::error::ApiError;
use crate::http::{HttpRequest, HttpResponse};
use crate::ports::Platform;
use crate::services::Services;
use serde_json::json;

/// The path prefix.
pub const PROFILES_PATH: &str = "/v1/profiles/";

/// Handle `GET /v1/profiles/{id}`.
pub async fn handle<P: Platform>(
    req: &HttpRequest,
    id: &str,
    s: &Services<'_, P>,
) -> Result<HttpResponse, ApiError> {
    if req.method != "GET" {
        return Err(ApiError::MethodNotAllowed);
    }
    let action = ["GET ", PROFILES_PATH, "{id}"].concat();
    let id = sluice_shared::enrich::url::decode(id);
    let token = admin::authenticated(req, s, &action, &id).await?;
    let result = if token.allows(Scope::ReadProfiles) {
        read(s, &id).await
    } else {
        Err(ApiError::Forbidden(Scope::ReadProfiles.as_str()))
    };
    admin::audited(s, token, &action, &id, result).await
}

async fn read<P: Platform>(s: &Services<'_, P>, id: &str) -> Result<HttpResponse, ApiError> {
    let found = super::feed::profile(s.platform, id).await?;
    Ok(match found {
        Some((person, detail)) => HttpResponse::json(
            200,
            &json!({"id": id, "person": person, "traits": detail.traits, "audiences": detail.audiences}),
        ),
        None => HttpResponse::json(
            404,
            &json!({"error": {"code": "profile_not_found", "message": "no audience state is kept for this id"}}),
        ),
    })
}
