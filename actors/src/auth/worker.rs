//! An auth worker: logins and sign-ups. Argon2 runs on tokio's blocking
//! pool, so a worker waits for it without stalling the runtime; the pool
//! of workers bounds how many hashes run at once.

use std::sync::Arc;
use std::time::Duration;

use bazaar_cluster::directory;
use bazaar_cluster::membership::table::unix_ms_now;
use bazaar_cluster::remote;
use parking_lot::RwLock;
use ractor::ActorProcessingErr;

use super::model::{self, Accounts, Role, TokenKey};
use super::protocol::{AuthFailure, AuthProtocol, AuthReply, AuthRequest, Session, AUTH_GROUP};
use super::store::{AuthStoreProtocol, SignUpWrite};
use super::AUTH_STORE_GROUP;
use crate::replica::{ReplicaReply, ReplicaRequest};
use crate::service_actor::ServiceWorker;

/// Timeout of a worker's call to its store.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// Start arguments of an auth worker.
pub struct AuthWorkerArgs {
    /// This node's name.
    pub node: String,
    /// Accounts, shared with the store.
    pub accounts: Arc<RwLock<Accounts>>,
    /// Signs tokens.
    pub token_key: TokenKey,
    /// A valid hash to verify against for unknown users.
    pub decoy_hash: String,
}

/// An auth worker.
pub struct AuthWorker;

impl ServiceWorker for AuthWorker {
    type Protocol = AuthProtocol;
    type State = AuthWorkerArgs;
    const GROUP: &'static str = AUTH_GROUP;

    fn node(state: &Self::State) -> &str {
        &state.node
    }

    async fn serve(
        state: &mut Self::State,
        request: AuthRequest,
    ) -> Result<AuthReply, ActorProcessingErr> {
        let outcome = match request {
            AuthRequest::Login { username, password } => login(state, username, password).await,
            AuthRequest::SignUp { username, password } => sign_up(state, username, password).await,
            AuthRequest::Crash => {
                tracing::warn!(node = %state.node, "crash injected into an auth worker");
                return Err("crash injected into auth worker".into());
            }
        };
        Ok(AuthReply::Session(outcome))
    }
}

fn session(state: &AuthWorkerArgs, username: String, role: Role) -> Session {
    Session {
        token: model::issue_token(&state.token_key, &username, role, unix_ms_now()),
        username,
        role,
    }
}

async fn login(
    state: &AuthWorkerArgs,
    username: String,
    password: String,
) -> Result<Session, AuthFailure> {
    let account = state.accounts.read().get(&username).cloned();
    // An unknown user costs a hash too, so timing does not tell which
    // usernames exist.
    let (hash, role) = match &account {
        Some(account) => (account.password_hash.clone(), account.role),
        None => (state.decoy_hash.clone(), Role::User),
    };
    let verified = tokio::task::spawn_blocking(move || model::verify_password(&password, &hash))
        .await
        .map_err(|err| AuthFailure::Unavailable(err.to_string()))?;
    if !verified || account.is_none() {
        return Err(AuthFailure::InvalidCredentials);
    }
    Ok(session(state, username, role))
}

async fn sign_up(
    state: &AuthWorkerArgs,
    username: String,
    password: String,
) -> Result<Session, AuthFailure> {
    Accounts::validate_sign_up(&username, &password)?;
    if state.accounts.read().get(&username).is_some() {
        return Err(AuthFailure::Taken);
    }
    let password_hash = tokio::task::spawn_blocking(move || model::hash_password(&password))
        .await
        .map_err(|err| AuthFailure::Unavailable(err.to_string()))??;
    let Some(store) = directory::local_members::<AuthStoreProtocol>(AUTH_STORE_GROUP)
        .into_iter()
        .next()
    else {
        return Err(AuthFailure::Unavailable(
            "account store is restarting".into(),
        ));
    };
    let write = ReplicaRequest::Write(SignUpWrite {
        username,
        password_hash,
    });
    match remote::call(&store, write, STORE_TIMEOUT).await {
        Ok(ReplicaReply::Written(Ok(account))) => {
            Ok(session(state, account.username, account.role))
        }
        Ok(ReplicaReply::Written(Err(failure))) => Err(failure),
        Ok(other) => Err(AuthFailure::Unavailable(format!(
            "unexpected store reply {other:?}"
        ))),
        Err(err) => Err(AuthFailure::Unavailable(format!("account store: {err}"))),
    }
}
