//! Auth: accounts, sign-up and login, replicated on every node.
//!
//! ```text
//! auth (one_for_one)
//! ├── auth-store         ReplicaStore<Accounts>: sign-ups, replication
//! ├── auth-worker-1      login (argon2 on the blocking pool), sign-up
//! └── auth-worker-N
//! ```
//!
//! Accounts are seeded (100 demo users and, when configured, `admin`) and
//! grow by sign-ups, which reach every replica. A login returns a signed,
//! expiring token that any node verifies with [`model::verify_token`] and
//! the key derived from the cluster cookie, without a network call.
//! Passwords cross the cluster link only if no local worker is up; the
//! link is authenticated by the cookie, and encrypted with TLS when enabled.

pub mod client;
pub mod model;
pub mod protocol;
pub mod store;
pub mod supervisor;
pub mod throttle;
mod worker;

pub use client::AuthClient;
pub use protocol::{AUTH_GROUP, AUTH_STORE_GROUP};
