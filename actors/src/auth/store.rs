//! Accounts as replicated state: a sign-up on one node reaches every
//! replica; concurrent sign-ups of one name resolve the same everywhere.

use serde::{Deserialize, Serialize};

use super::model::{Account, Accounts};
use super::protocol::AuthFailure;
use crate::replica::{ReplicaProtocol, ReplicatedState};

/// A sign-up requested on this node, with the password already hashed.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SignUpWrite {
    /// Account name.
    pub username: String,
    /// Argon2 hash of the password.
    pub password_hash: String,
}

impl std::fmt::Debug for SignUpWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignUpWrite({:?})", self.username)
    }
}

/// The account store's protocol.
pub type AuthStoreProtocol = ReplicaProtocol<Accounts>;

impl ReplicatedState for Accounts {
    const PROTOCOL: &'static str = "bazaar.auth.store.v1";
    type Item = Account;
    type Write = SignUpWrite;
    type Written = Result<Account, AuthFailure>;

    fn apply(
        &mut self,
        write: SignUpWrite,
        origin: &str,
        now_ms: u64,
    ) -> (Self::Written, Vec<Account>) {
        match self.sign_up(&write.username, write.password_hash, origin, now_ms) {
            Ok(account) => (Ok(account.clone()), vec![account]),
            Err(err) => (Err(err.into()), Vec::new()),
        }
    }

    fn merge(&mut self, item: Account) -> bool {
        Accounts::merge(self, item)
    }

    fn changes(&self) -> Vec<Account> {
        Accounts::changes(self)
    }
}
