//! Every default of the command line in one place, and how a node gets its
//! cluster cookie.
//!
//! The cookie never travels in argv (where `ps` shows it): it comes from
//! the `BAZAAR_COOKIE` environment variable or from a file.

use std::path::Path;

use anyhow::Context;
use bazaar_cluster::Cookie;

/// Environment variable holding the cluster cookie.
pub const COOKIE_ENV: &str = "BAZAAR_COOKIE";
/// Set by `bazaar up` in its nodes' environment: enables the dashboard's
/// kill buttons (every node of such a cluster is a local process).
pub const LAUNCHED_BY_UP_ENV: &str = "BAZAAR_LAUNCHED_BY_UP";
/// Environment variable holding the admin password.
pub const ADMIN_PASSWORD_ENV: &str = "BAZAAR_ADMIN_PASSWORD";
/// File name of the admin password inside the data dir of `bazaar up`.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";
/// Default data directory of `bazaar up` and `bazaar kill`.
pub const DEFAULT_DATA_DIR: &str = "./bazaar-data";
/// Default data directory of `bazaar demo`.
pub const DEFAULT_DEMO_DATA_DIR: &str = "./bazaar-demo";
/// First HTTP port of a `bazaar demo` cluster (beside a running `up`).
pub const DEFAULT_DEMO_HTTP_PORT: u16 = 8181;
/// First cluster port of a `bazaar demo` cluster.
pub const DEFAULT_DEMO_CLUSTER_PORT: u16 = 7171;
/// Default number of nodes of `bazaar up`.
pub const DEFAULT_NODES: usize = 3;
/// First HTTP port of `bazaar up`; node i gets this + i - 1.
pub const DEFAULT_HTTP_PORT: u16 = 8081;
/// First cluster port of `bazaar up`; node i gets this + i - 1.
pub const DEFAULT_CLUSTER_PORT: u16 = 7071;
/// Seconds `bazaar up` waits before starting a dead node again.
pub const DEFAULT_RESPAWN_AFTER_SECS: u64 = 5;
/// Node `bazaar status` asks by default.
pub const DEFAULT_STATUS_URL: &str = "http://127.0.0.1:8081";
/// File name of a node's pid file inside its data dir.
pub const PID_FILE: &str = "pid";
/// File name of a node's log inside its data dir (written by `bazaar up`).
pub const LOG_FILE: &str = "node.log";
/// File name of the cluster cookie inside the data dir of `bazaar up`.
pub const COOKIE_FILE: &str = "cookie";
/// Bytes of randomness in a generated cookie (hex-encoded, so twice as many characters).
pub const GENERATED_COOKIE_BYTES: usize = 32;

/// Reads the cookie from `--cookie-file` if given, else from the environment.
pub fn load_cookie(cookie_file: Option<&Path>) -> anyhow::Result<Cookie> {
    let secret = match cookie_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the cookie file {}", path.display()))?,
        None => std::env::var(COOKIE_ENV).map_err(|_| {
            anyhow::anyhow!(
                "no cluster cookie: set {COOKIE_ENV} or pass --cookie-file (bazaar up does this for you)"
            )
        })?,
    };
    Ok(Cookie::new(&secret)?)
}

/// Reads the admin password from `--admin-password-file` if given, else
/// from the environment; `None` if neither is set.
pub fn load_admin_password(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    let password =
        match file {
            Some(path) => Some(std::fs::read_to_string(path).with_context(|| {
                format!("cannot read the admin password file {}", path.display())
            })?),
            None => std::env::var(ADMIN_PASSWORD_ENV).ok(),
        };
    Ok(password
        .map(|password| password.trim().to_string())
        .filter(|password| !password.is_empty()))
}

/// A random admin password: 16 characters of letters and digits.
pub fn generate_password() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 16)
}

/// A fresh random cookie, hex-encoded.
pub fn generate_cookie() -> String {
    let bytes: [u8; GENERATED_COOKIE_BYTES] = rand::random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
