//! The auth service's contract.

use bazaar_cluster::remote::Protocol;
use serde::{Deserialize, Serialize};

use super::model::{AuthError, Role};

/// Auth workers, on every node.
pub const AUTH_GROUP: &str = "bazaar.auth";
/// Account stores, one per node (replication).
pub const AUTH_STORE_GROUP: &str = "bazaar.auth.store";

/// The auth workers' protocol.
pub struct AuthProtocol;

impl Protocol for AuthProtocol {
    const NAME: &'static str = "bazaar.auth.v1";
    type Request = AuthRequest;
    type Reply = AuthReply;
}

/// Requests to an auth worker.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub enum AuthRequest {
    /// Check a password and issue a token.
    Login {
        /// Account name.
        username: String,
        /// Password in clear.
        password: String,
    },
    /// Create an account and issue a token.
    SignUp {
        /// Account name wanted.
        username: String,
        /// Password in clear.
        password: String,
    },
    /// Fail on purpose, to exercise supervision.
    Crash,
}

impl std::fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Login { username, .. } => write!(f, "Login({username:?})"),
            Self::SignUp { username, .. } => write!(f, "SignUp({username:?})"),
            Self::Crash => f.write_str("Crash"),
        }
    }
}

/// A successful login or sign-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The signed token.
    pub token: String,
    /// Account name.
    pub username: String,
    /// Its role.
    pub role: Role,
}

/// Why auth refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AuthFailure {
    /// Unknown user or wrong password (never says which).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The sign-up breaks a rule.
    #[error("{0}")]
    Invalid(String),
    /// The username is taken.
    #[error("username is taken")]
    Taken,
    /// The service could not do it now.
    #[error("auth unavailable: {0}")]
    Unavailable(String),
}

impl From<AuthError> for AuthFailure {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::UsernameTaken(_) => Self::Taken,
            AuthError::InvalidUsername | AuthError::InvalidPassword => {
                Self::Invalid(err.to_string())
            }
            AuthError::InvalidHash | AuthError::Hashing(_) => Self::Unavailable(err.to_string()),
        }
    }
}

/// Replies of an auth worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthReply {
    /// A token, or why not.
    Session(Result<Session, AuthFailure>),
}
