//! HTTP for the tests: blocking requests bounded by a timeout as a whole
//! (connect, write and read together), so that a frozen or dead node reads
//! as "unreachable" quickly instead of hanging a polling loop.
//!
//! Reads use [`HTTP_TIMEOUT`]. Writes (sign-up, login, admin calls) use the
//! longer [`WRITE_TIMEOUT`]: they hash passwords or wait for a replica, and
//! a timed-out write leaves its outcome unknown, which a test cannot use.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

/// Budget of one HTTP read: connect, write and read together.
pub const HTTP_TIMEOUT: Duration = Duration::from_millis(500);

/// Budget of one HTTP write (`POST`, `PUT`).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(3);

fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::blocking::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(HTTP_TIMEOUT)
            // A fresh connection per request: a reused one could outlive
            // the node process it was opened to.
            .pool_max_idle_per_host(0)
            .build()
            .expect("http client")
    })
}

/// `GET path` on `addr`. Returns the status and the body, or `None` if the
/// node cannot be reached or does not answer in time.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http_get_within(addr, path, HTTP_TIMEOUT)
}

/// `GET path` on `addr` with a budget of `timeout` instead of
/// [`HTTP_TIMEOUT`]; `None` if unreachable or late.
pub fn http_get_within(addr: SocketAddr, path: &str, timeout: Duration) -> Option<(u16, String)> {
    let request = client()
        .get(format!("http://{addr}{path}"))
        .timeout(timeout);
    let response = request.send().ok()?;
    let status = response.status().as_u16();
    let body = response.text().ok()?;
    Some((status, body))
}

/// `method path` on `addr` with `body` as JSON and, if given, the header
/// `Authorization: Bearer <token>`, within [`WRITE_TIMEOUT`]. Returns the
/// status and the body, or `None` if unreachable or late.
pub fn http_send(
    method: Method,
    addr: SocketAddr,
    path: &str,
    body: &Value,
    token: Option<&str>,
) -> Option<(u16, String)> {
    let mut request = client()
        .request(method, format!("http://{addr}{path}"))
        .timeout(WRITE_TIMEOUT)
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().ok()?;
    let status = response.status().as_u16();
    let body = response.text().ok()?;
    Some((status, body))
}

/// `POST path` with a JSON body; see [`http_send`].
pub fn http_post(
    addr: SocketAddr,
    path: &str,
    body: &Value,
    token: Option<&str>,
) -> Option<(u16, String)> {
    http_send(Method::POST, addr, path, body, token)
}

/// `PUT path` with a JSON body; see [`http_send`].
pub fn http_put(
    addr: SocketAddr,
    path: &str,
    body: &Value,
    token: Option<&str>,
) -> Option<(u16, String)> {
    http_send(Method::PUT, addr, path, body, token)
}
