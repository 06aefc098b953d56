//! HTTP for the tests: one blocking `GET` bounded by [`HTTP_TIMEOUT`] as a
//! whole, so that a frozen or dead node reads as "unreachable" quickly
//! instead of hanging a polling loop.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

/// Budget of one HTTP request: connect, write and read together.
pub const HTTP_TIMEOUT: Duration = Duration::from_millis(500);

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
    let response = client().get(format!("http://{addr}{path}")).send().ok()?;
    let status = response.status().as_u16();
    let body = response.text().ok()?;
    Some((status, body))
}
