//! `AuthClient`: login and sign-up through the auth service. Logins are
//! retried on another replica (they change nothing); sign-ups are not.

use std::time::Duration;

use bazaar_cluster::client::{ClientError, Idempotency, ServiceClient};

use super::protocol::{AuthFailure, AuthProtocol, AuthReply, AuthRequest, Session, AUTH_GROUP};

/// Timeout of one auth call (argon2 is slow on purpose).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts for logins.
const LOGIN_ATTEMPTS: usize = 2;

/// A client of the auth service.
#[derive(Debug, Clone)]
pub struct AuthClient {
    inner: ServiceClient<AuthProtocol>,
}

impl Default for AuthClient {
    fn default() -> Self {
        Self::new()
    }
}

fn unavailable(err: ClientError) -> AuthFailure {
    AuthFailure::Unavailable(err.to_string())
}

impl AuthClient {
    /// A client with the default timeout and retries.
    pub fn new() -> Self {
        Self {
            inner: ServiceClient::new(AUTH_GROUP, CALL_TIMEOUT, LOGIN_ATTEMPTS),
        }
    }

    /// Checks the password and returns a token.
    pub async fn login(&self, username: &str, password: &str) -> Result<Session, AuthFailure> {
        let request = AuthRequest::Login {
            username: username.to_string(),
            password: password.to_string(),
        };
        let AuthReply::Session(outcome) = self
            .inner
            .call(request, Idempotency::Idempotent)
            .await
            .map_err(unavailable)?;
        outcome
    }

    /// Creates an account and returns a token.
    pub async fn sign_up(&self, username: &str, password: &str) -> Result<Session, AuthFailure> {
        let request = AuthRequest::SignUp {
            username: username.to_string(),
            password: password.to_string(),
        };
        let AuthReply::Session(outcome) = self
            .inner
            .call(request, Idempotency::NotIdempotent)
            .await
            .map_err(unavailable)?;
        outcome
    }

    /// Makes one auth worker on `node` fail.
    pub async fn crash(&self, node: &str) -> Result<(), AuthFailure> {
        self.inner
            .deliver_on(node, AuthRequest::Crash)
            .await
            .map_err(unavailable)
    }
}
