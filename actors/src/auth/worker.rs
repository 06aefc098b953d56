//! An auth worker: logins and sign-ups. Argon2 runs on tokio's blocking
//! pool, so a worker waits for it without stalling the runtime; the pool
//! of workers bounds how many hashes run at once.

use std::sync::Arc;
use std::time::Duration;

use bazaar_cluster::directory;
use bazaar_cluster::membership::table::unix_ms_now;
use bazaar_cluster::remote::{self, ServiceMsg};
use parking_lot::RwLock;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::model::{self, Accounts, Role, TokenKey};
use super::protocol::{AuthFailure, AuthProtocol, AuthReply, AuthRequest, Session, AUTH_GROUP};
use super::store::{AuthStoreProtocol, SignUpWrite};
use super::AUTH_STORE_GROUP;
use crate::replica::{ReplicaReply, ReplicaRequest};

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

impl Actor for AuthWorker {
    type Msg = ServiceMsg<AuthProtocol>;
    type State = AuthWorkerArgs;
    type Arguments = AuthWorkerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: AuthWorkerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        directory::join(AUTH_GROUP, &args.node, &myself);
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some((request, reply)) = message.into_parts() else {
            return Ok(());
        };
        let outcome = match request {
            AuthRequest::Login { username, password } => login(state, username, password).await,
            AuthRequest::SignUp { username, password } => sign_up(state, username, password).await,
            AuthRequest::Crash => {
                tracing::warn!(node = %state.node, "crash injected into an auth worker");
                return Err("crash injected into auth worker".into());
            }
        };
        remote::answer(reply, AuthReply::Session(outcome));
        Ok(())
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
