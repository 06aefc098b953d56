//! Accounts: sign-up, login, and the token extractors other routes use.
//!
//! Logins are throttled per account and client address by the node's
//! [`LoginThrottle`](bazaar_actors::auth::throttle::LoginThrottle) (its module doc gives the policy and why the
//! per-account limit delays rather than blocks): a throttled attempt is
//! refused with 429 and `Retry-After` before any password is hashed, so a
//! guesser costs the node a map lookup, not an argon2 hash. Failures count
//! in `bazaar_login_failures_total`, refusals in
//! `bazaar_login_throttled_total{scope}`; a failure past the free attempts
//! logs a warning with the user and address.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bazaar_actors::auth::model::{verify_token, Claims, Role};
use bazaar_actors::auth::protocol::{AuthFailure, Session};
use bazaar_actors::auth::throttle::Verdict;
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

/// `POST /api/login`: 200 with a token, 401 on bad credentials, 429 with
/// `Retry-After` while this account and address (or this address) is
/// throttled.
pub async fn login(
    State(state): State<GatewayState>,
    ClientAddress(address): ClientAddress,
    ApiJson(credentials): ApiJson<Credentials>,
) -> Result<Json<TokenResponse>, Response> {
    let username = credentials.username.as_str();
    let Some(address) = address else {
        // Served in-process without a peer address: nothing to key on.
        let session = state.auth.login(username, &credentials.password).await;
        return session
            .map(|session| Json(TokenResponse::from(session)))
            .map_err(|failure| auth_error(failure).into_response());
    };
    let verdict = state.logins.lock().admit(username, address, Instant::now());
    match verdict {
        Verdict::Refused { scope, retry_after } => {
            metrics::counter!("bazaar_login_throttled_total", "scope" => scope.as_str())
                .increment(1);
            tracing::debug!(user = %username, %address, scope = scope.as_str(), "login throttled");
            return Err(too_many_logins(retry_after));
        }
        Verdict::Admitted { delay } if !delay.is_zero() => tokio::time::sleep(delay).await,
        Verdict::Admitted { .. } => {}
    }
    match state.auth.login(username, &credentials.password).await {
        Ok(session) => {
            state.logins.lock().succeeded(username, address);
            Ok(Json(TokenResponse::from(session)))
        }
        Err(AuthFailure::InvalidCredentials) => {
            metrics::counter!("bazaar_login_failures_total").increment(1);
            let (failures, free) = {
                let mut logins = state.logins.lock();
                let failures = logins.failed(username, address, Instant::now());
                (failures, logins.config().free_attempts)
            };
            if failures > free {
                tracing::warn!(user = %username, %address, failures, "repeated login failures, throttling");
            }
            Err(auth_error(AuthFailure::InvalidCredentials).into_response())
        }
        Err(failure) => {
            // Not a guess: the attempt must not count against the client.
            state.logins.lock().abandoned(username, address);
            Err(auth_error(failure).into_response())
        }
    }
}

/// 429 with `Retry-After` in whole seconds, at least 1.
fn too_many_logins(wait: Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed logins, retry later",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// The client's IP address, if the server recorded the peer.
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(Self(peer.map(|ConnectInfo(peer)| peer.ip())))
    }
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
