//! Auth domain logic: accounts, password hashes and signed tokens. Pure: no
//! ractor, no tokio.
//!
//! Auth is replicated on every node. Each replica holds the same seeded
//! [`Accounts`] (100 demo users and an optional `admin`) plus the sign-ups
//! made anywhere in the cluster, which reach every replica through
//! [`Accounts::merge`]. A login returns a token signed with a key derived
//! from the cluster cookie, so any node verifies it without a network call.
//!
//! Invariants:
//! - every account has a valid username and an argon2id PHC hash whose cost
//!   is bounded (a replica never runs a hash it did not agree to pay for);
//! - seeded accounts (origin [`SEED_ORIGIN`]) are identical on every node and
//!   never replaced; only sign-ups replicate, always with the `user` role;
//! - merging is a join: the same accounts merged in any order, any number of
//!   times, give the same state. When two nodes created the same username
//!   concurrently, the lowest `(created_ms, origin)` wins on every replica;
//! - token verification never panics, checks the signature in constant time
//!   before it parses anything, and bounds the input length.
//!
//! Token format: `base64url(json claims) + "." + base64url(hmac-sha256(key,
//! first part))`, without padding.

use std::collections::btree_map::{BTreeMap, Entry};
use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, Params};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Number of seeded demo users, `user001` to `user100`.
pub const DEMO_USERS: usize = 100;
/// Password of every demo user.
pub const DEMO_PASSWORD: &str = "bazaar";
/// Username of the seeded administrator.
pub const ADMIN_USERNAME: &str = "admin";
/// Origin of the seeded accounts; no node may be named so.
pub const SEED_ORIGIN: &str = "seed";
/// How long a token is valid.
pub const TOKEN_TTL_MS: u64 = 3_600_000;
/// Longest token [`verify_token`] looks at.
pub const MAX_TOKEN_LEN: usize = 1024;
/// Shortest and longest username, in characters.
pub const USERNAME_CHARS: std::ops::RangeInclusive<usize> = 3..=32;
/// Shortest and longest password, in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 6..=128;

/// Context string of the token key derivation; bump the version to rotate.
const TOKEN_KEY_CONTEXT: &[u8] = b"bazaar.auth.token.v1";
/// Cost ceilings for a hash to be accepted (default: m = 19 MiB, t = 2, p = 1).
const MAX_HASH_M_COST_KIB: u32 = 64 * 1024;
const MAX_HASH_T_COST: u32 = 16;
const MAX_HASH_P_COST: u32 = 8;
/// Longest PHC string accepted; an argon2id default one is under 100 bytes.
const MAX_HASH_LEN: usize = 256;
/// Longest password hashed or verified, in bytes: 128 characters of UTF-8.
const MAX_PASSWORD_BYTES: usize = 128 * 4;

type HmacSha256 = Hmac<Sha256>;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A shopper.
    User,
    /// An operator of the shop.
    Admin,
}

/// A user account, as replicated between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Unique login name, `[a-z0-9_]{3,32}`.
    pub username: String,
    /// Argon2id hash in PHC string format.
    pub password_hash: String,
    /// What the account may do.
    pub role: Role,
    /// Creation time in ms since the Unix epoch; 0 for seeded accounts.
    pub created_ms: u64,
    /// Node that created it, [`SEED_ORIGIN`] for seeded accounts.
    pub origin: String,
}

impl Account {
    /// Whether it comes from the seed rather than a sign-up.
    pub fn is_seeded(&self) -> bool {
        self.origin == SEED_ORIGIN
    }

    /// Order of precedence between two versions of a username: lowest
    /// wins. The fields after `origin` only break ties between versions no
    /// honest node produces, so that merging stays order-independent.
    fn precedence(&self) -> (u64, &str, &str, Role) {
        (
            self.created_ms,
            &self.origin,
            &self.password_hash,
            self.role,
        )
    }
}

/// Why an auth operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The username breaks the rules.
    #[error("username must be 3 to 32 characters of a-z, 0-9 and _")]
    InvalidUsername,
    /// The password breaks the rules.
    #[error("password must be 6 to 128 characters")]
    InvalidPassword,
    /// Someone already has this username.
    #[error("username {0:?} is taken")]
    UsernameTaken(String),
    /// Not an argon2id PHC string within the accepted cost.
    #[error("password hash is not an accepted argon2id hash")]
    InvalidHash,
    /// Argon2 refused to hash.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

impl AuthError {
    /// Whether trying again may succeed. None of these is transient: the
    /// same input fails the same way.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::InvalidUsername
            | Self::InvalidPassword
            | Self::UsernameTaken(_)
            | Self::InvalidHash
            | Self::Hashing(_) => false,
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token: too long, wrong shape or unreadable claims.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match: tampered, or signed with another key.
    #[error("bad token signature")]
    BadSignature,
    /// Valid, but past its expiry.
    #[error("token expired")]
    Expired,
}

/// Hashes `password` with argon2id (default parameters) and a random salt;
/// refuses a password too long to ever verify.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::InvalidPassword);
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hashing(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// Whether `password` matches `hash`; false for a malformed or over-costly
/// hash or an over-long password. Never panics.
pub fn verify_password(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Some(parsed) = parse_hash(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Parses a PHC string if it is argon2id with bounded cost.
fn parse_hash(hash: &str) -> Option<PasswordHash<'_>> {
    if hash.len() > MAX_HASH_LEN {
        return None;
    }
    let parsed = PasswordHash::new(hash).ok()?;
    if parsed.algorithm != argon2::ARGON2ID_IDENT || parsed.salt.is_none() || parsed.hash.is_none()
    {
        return None;
    }
    let params = Params::try_from(&parsed).ok()?;
    let affordable = params.m_cost() <= MAX_HASH_M_COST_KIB
        && params.t_cost() <= MAX_HASH_T_COST
        && params.p_cost() <= MAX_HASH_P_COST;
    affordable.then_some(parsed)
}

/// Checks a username: 3 to 32 characters of `[a-z0-9_]`.
pub fn validate_username(username: &str) -> Result<(), AuthError> {
    let allowed = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_';
    if USERNAME_CHARS.contains(&username.len()) && username.bytes().all(allowed) {
        Ok(())
    } else {
        Err(AuthError::InvalidUsername)
    }
}

/// Checks a password: 6 to 128 characters.
pub fn validate_password(password: &str) -> Result<(), AuthError> {
    if PASSWORD_CHARS.contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(AuthError::InvalidPassword)
    }
}

/// Username of demo user `n` (1-based): `user001`.
pub fn demo_username(n: usize) -> String {
    format!("user{n:03}")
}

/// The accounts a replica knows, by username.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    by_username: BTreeMap<String, Account>,
    /// The demo users' hash: what a login of an unknown user verifies
    /// against, so that its timing does not tell which usernames exist.
    decoy_hash: String,
}

impl Accounts {
    /// The seed: [`DEMO_USERS`] demo users sharing `demo_hash` (argon2 is slow
    /// on purpose, so it is computed once), and `admin` if `admin_hash` is
    /// given. Every node must seed with the same arguments.
    pub fn demo(demo_hash: String, admin_hash: Option<String>) -> Self {
        let seeded = |username: String, password_hash: String, role: Role| Account {
            username,
            password_hash,
            role,
            created_ms: 0,
            origin: SEED_ORIGIN.to_owned(),
        };
        let mut by_username = BTreeMap::new();
        for n in 1..=DEMO_USERS {
            let account = seeded(demo_username(n), demo_hash.clone(), Role::User);
            by_username.insert(account.username.clone(), account);
        }
        if let Some(hash) = admin_hash {
            let account = seeded(ADMIN_USERNAME.to_owned(), hash, Role::Admin);
            by_username.insert(account.username.clone(), account);
        }
        Self {
            by_username,
            decoy_hash: demo_hash,
        }
    }

    /// The account of `username`.
    pub fn get(&self, username: &str) -> Option<&Account> {
        self.by_username.get(username)
    }

    /// The hash a login of an unknown user verifies against (the demo
    /// users'), so that it costs as much as a known user's; empty if never
    /// seeded.
    pub fn decoy_hash(&self) -> String {
        self.decoy_hash.clone()
    }

    /// Checks a sign-up request before spending time hashing its password.
    pub fn validate_sign_up(username: &str, password: &str) -> Result<(), AuthError> {
        validate_username(username)?;
        validate_password(password)
    }

    /// Creates the user account `username` made on node `origin` at
    /// `now_ms`, and returns it for replication to the other nodes.
    pub fn sign_up(
        &mut self,
        username: &str,
        password_hash: String,
        origin: &str,
        now_ms: u64,
    ) -> Result<Account, AuthError> {
        debug_assert_ne!(
            origin, SEED_ORIGIN,
            "a node may not be named {SEED_ORIGIN:?}"
        );
        validate_username(username)?;
        if parse_hash(&password_hash).is_none() {
            return Err(AuthError::InvalidHash);
        }
        let Entry::Vacant(slot) = self.by_username.entry(username.to_owned()) else {
            return Err(AuthError::UsernameTaken(username.to_owned()));
        };
        let account = Account {
            username: username.to_owned(),
            password_hash,
            role: Role::User,
            created_ms: now_ms,
            origin: origin.to_owned(),
        };
        slot.insert(account.clone());
        Ok(account)
    }

    /// Merges an account from another replica; returns true if it changed
    /// anything. The lowest `(created_ms, origin)` wins a username. Seeded
    /// accounts never change, and an incoming account that is seeded, admin,
    /// or invalid is ignored: only sign-ups replicate.
    pub fn merge(&mut self, account: Account) -> bool {
        let acceptable = !account.is_seeded()
            && account.role == Role::User
            && validate_username(&account.username).is_ok()
            && parse_hash(&account.password_hash).is_some();
        if !acceptable {
            return false;
        }
        match self.by_username.entry(account.username.clone()) {
            Entry::Vacant(slot) => {
                slot.insert(account);
                true
            }
            Entry::Occupied(mut slot) => {
                let current = slot.get();
                if current.is_seeded() || current.precedence() <= account.precedence() {
                    return false;
                }
                slot.insert(account);
                true
            }
        }
    }

    /// The accounts created after the seed, by username: what a new replica
    /// needs to catch up.
    pub fn changes(&self) -> Vec<Account> {
        self.by_username
            .values()
            .filter(|account| !account.is_seeded())
            .cloned()
            .collect()
    }

    /// Number of accounts, seeded included.
    pub fn len(&self) -> usize {
        self.by_username.len()
    }

    /// Whether there is no account at all.
    pub fn is_empty(&self) -> bool {
        self.by_username.is_empty()
    }
}

/// The key tokens are signed with, derived from the cluster cookie.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// `HMAC-SHA256(cookie, "bazaar.auth.token.v1")`: the same on every node
    /// of a cluster, and never the cookie itself.
    pub fn derive(cookie: &str) -> Self {
        let mut mac =
            HmacSha256::new_from_slice(cookie.as_bytes()).expect("hmac accepts keys of any length");
        mac.update(TOKEN_KEY_CONTEXT);
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("hmac accepts keys of any length")
    }
}

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    /// Its role when the token was issued.
    pub role: Role,
    /// Issue time, ms since the Unix epoch.
    pub iat_ms: u64,
    /// Expiry time, ms since the Unix epoch; invalid from then on.
    pub exp_ms: u64,
}

/// Issues a token for `username`, valid for [`TOKEN_TTL_MS`] from `now_ms`.
pub fn issue_token(key: &TokenKey, username: &str, role: Role, now_ms: u64) -> String {
    let claims = Claims {
        sub: username.to_owned(),
        role,
        iat_ms: now_ms,
        exp_ms: now_ms.saturating_add(TOKEN_TTL_MS),
    };
    let json = serde_json::to_vec(&claims).expect("claims always serialize to json");
    let payload = URL_SAFE_NO_PAD.encode(json);
    let mut mac = key.mac();
    mac.update(payload.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{payload}.{signature}")
}

/// Verifies `token` at `now_ms` and returns its claims. Any signature that
/// does not authenticate the payload, undecodable included, is
/// [`TokenError::BadSignature`]; the payload is parsed only once signed.
pub fn verify_token(key: &TokenKey, token: &str, now_ms: u64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let Some((payload, signature)) = token.split_once('.') else {
        return Err(TokenError::Malformed);
    };
    if payload.is_empty() || signature.contains('.') {
        return Err(TokenError::Malformed);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::BadSignature)?;
    let mut mac = key.mac();
    mac.update(payload.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if claims.exp_ms <= now_ms {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests;
