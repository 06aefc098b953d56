//! Accounts: sign-up, login, and the token extractors other routes use.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use bazaar_actors::auth::model::{verify_token, Claims, Role};
use bazaar_actors::auth::protocol::{AuthFailure, Session};
use bazaar_cluster::membership::table::unix_ms_now;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiJson};
use super::GatewayState;

/// Body of sign-up and login.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Account name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Answer of sign-up and login.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    /// Bearer token for `Authorization: Bearer ...`.
    pub token: String,
    /// Account name.
    pub username: String,
    /// `user` or `admin`.
    pub role: Role,
}

impl From<Session> for TokenResponse {
    fn from(session: Session) -> Self {
        Self {
            token: session.token,
            username: session.username,
            role: session.role,
        }
    }
}

fn auth_error(failure: AuthFailure) -> ApiError {
    match failure {
        AuthFailure::InvalidCredentials => ApiError::unauthorized(failure.to_string()),
        AuthFailure::Invalid(reason) => ApiError::unprocessable(reason),
        AuthFailure::Taken => ApiError::new(StatusCode::CONFLICT, failure.to_string()),
        AuthFailure::Unavailable(reason) => ApiError::unavailable(reason),
    }
}

/// `POST /api/signup`: 201 with a token.
pub async fn sign_up(
    State(state): State<GatewayState>,
    ApiJson(credentials): ApiJson<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    let session = state
        .auth
        .sign_up(&credentials.username, &credentials.password)
        .await
        .map_err(auth_error)?;
    Ok((StatusCode::CREATED, Json(TokenResponse::from(session))))
}

/// `POST /api/login`: 200 with a token, 401 on bad credentials.
pub async fn login(
    State(state): State<GatewayState>,
    ApiJson(credentials): ApiJson<Credentials>,
) -> Result<Json<TokenResponse>, ApiError> {
    let session = state
        .auth
        .login(&credentials.username, &credentials.password)
        .await
        .map_err(auth_error)?;
    Ok(Json(TokenResponse::from(session)))
}

/// A request with a valid token (401 otherwise).
pub struct User(pub Claims);

impl FromRequestParts<GatewayState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &GatewayState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing authorization: bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("authorization must be: bearer <token>"))?;
        verify_token(&state.token_key, token.trim(), unix_ms_now())
            .map(User)
            .map_err(|err| ApiError::unauthorized(err.to_string()))
    }
}

/// A request with a valid admin token (401 without a token, 403 for a user).
pub struct Admin(pub Claims);

impl FromRequestParts<GatewayState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &GatewayState,
    ) -> Result<Self, Self::Rejection> {
        let User(claims) = User::from_request_parts(parts, state).await?;
        if claims.role != Role::Admin {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "admin only"));
        }
        Ok(Admin(claims))
    }
}
