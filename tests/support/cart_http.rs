//! The cart routes as the tests speak them: every request carries a bearer
//! token, and changes may carry an `Idempotency-Key`. All return `None`
//! when the node is unreachable or late, for polling loops that must
//! tolerate a node coming and going; bodies are JSON (panics otherwise).
//!
//! Cart calls get [`CART_TIMEOUT`]: an owner may be retrying its backup
//! for a few seconds while a node dies.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::TestCluster;

/// Budget of one cart request: more than the cart client's own deadline.
pub const CART_TIMEOUT: Duration = Duration::from_secs(8);

fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::blocking::Client::builder()
            .timeout(CART_TIMEOUT)
            .connect_timeout(Duration::from_millis(500))
            // A fresh connection per request: a reused one could outlive
            // the node process it was opened to.
            .pool_max_idle_per_host(0)
            .build()
            .expect("http client")
    })
}

impl TestCluster {
    /// `method path` on node `i` with a bearer token, an optional JSON body
    /// and an optional idempotency key; `(status, JSON body)`.
    pub fn cart_request(
        &self,
        i: usize,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Option<(u16, Value)> {
        let mut request = client()
            .request(
                method.clone(),
                format!("http://{}{path}", self.http_addr(i)),
            )
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().ok()?;
        let status = response.status().as_u16();
        let text = response.text().ok()?;
        let value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("n{i}: {method} {path}: {status} with a non-JSON body ({e}): {text:?}")
        });
        Some((status, value))
    }

    /// `GET /api/cart` on node `i`.
    pub fn cart(&self, i: usize, token: &str) -> Option<(u16, Value)> {
        self.cart_request(i, Method::GET, "/api/cart", token, None, None)
    }

    /// `POST /api/cart/items` on node `i`.
    pub fn add_to_cart(
        &self,
        i: usize,
        token: &str,
        product_id: u64,
        quantity: u32,
        idempotency_key: Option<&str>,
    ) -> Option<(u16, Value)> {
        let body = json!({ "product_id": product_id, "quantity": quantity });
        self.cart_request(
            i,
            Method::POST,
            "/api/cart/items",
            token,
            Some(&body),
            idempotency_key,
        )
    }

    /// `DELETE /api/cart/items/{product_id}` on node `i`.
    pub fn remove_from_cart(&self, i: usize, token: &str, product_id: u64) -> Option<(u16, Value)> {
        let path = format!("/api/cart/items/{product_id}");
        self.cart_request(i, Method::DELETE, &path, token, None, None)
    }
}
