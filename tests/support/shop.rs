//! The store's HTTP API as the tests speak it: products, search, accounts
//! and the admin routes of one node's gateway.
//!
//! Two flavours, on purpose:
//! - `try_*` and [`TestCluster::product`] return `None` when the node is
//!   unreachable or late, for polling loops that must tolerate a node
//!   coming and going;
//! - the others panic when the node does not answer, or answers with
//!   something other than JSON: a test that sends a write must know its
//!   outcome, and every answer of the API, errors included, is JSON.

use serde_json::{json, Value};

use super::http::{http_get, http_post, http_put};
use super::TestCluster;

/// Password of the demo users `user001`..`user100`.
pub const DEMO_PASSWORD: &str = "bazaar";

impl TestCluster {
    /// The admin password every node of this cluster was given.
    pub fn admin_password(&self) -> &str {
        &self.admin_password
    }

    /// `GET path` on node `i` as `(status, JSON body)`; `None` if the node
    /// is unreachable or late. Panics if the body is not JSON.
    pub fn try_get_json(&self, i: usize, path: &str) -> Option<(u16, Value)> {
        let (status, body) = http_get(self.http_addr(i), path)?;
        Some((status, parse(i, "GET", path, status, &body)))
    }

    /// `GET path` on node `i` as `(status, JSON body)`; panics if the node
    /// does not answer.
    pub fn get_json(&self, i: usize, path: &str) -> (u16, Value) {
        self.try_get_json(i, path)
            .unwrap_or_else(|| panic!("n{i}: GET {path}: no answer"))
    }

    /// `POST path` with a JSON body (and a bearer token if given) on node
    /// `i`; panics if the node does not answer.
    pub fn post_json(
        &self,
        i: usize,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> (u16, Value) {
        let (status, text) = http_post(self.http_addr(i), path, body, token)
            .unwrap_or_else(|| panic!("n{i}: POST {path}: no answer"));
        (status, parse(i, "POST", path, status, &text))
    }

    /// `PUT path` with a JSON body (and a bearer token if given) on node
    /// `i`; panics if the node does not answer.
    pub fn put_json(
        &self,
        i: usize,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> (u16, Value) {
        let (status, text) = http_put(self.http_addr(i), path, body, token)
            .unwrap_or_else(|| panic!("n{i}: PUT {path}: no answer"));
        (status, parse(i, "PUT", path, status, &text))
    }

    /// Product `id` as node `i` serves it; `None` unless it answers 200.
    pub fn product(&self, i: usize, id: u64) -> Option<Value> {
        match self.try_get_json(i, &format!("/api/products/{id}"))? {
            (200, product) => Some(product),
            _ => None,
        }
    }

    /// Ids of the products node `i` finds for `query`, best first; `None`
    /// unless it answers 200.
    pub fn search_ids(&self, i: usize, query: &str, limit: usize) -> Option<Vec<u64>> {
        let path = format!("/api/search?q={query}&limit={limit}");
        match self.try_get_json(i, &path)? {
            (200, results) => Some(
                results["items"]
                    .as_array()?
                    .iter()
                    .filter_map(|item| item["id"].as_u64())
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Whether node `i` answers `GET /readyz` with 200.
    pub fn ready(&self, i: usize) -> bool {
        self.status(i, "/readyz") == Some(200)
    }

    /// Whether every node in `nodes` is ready.
    pub fn all_ready(&self, nodes: &[usize]) -> bool {
        nodes.iter().all(|&i| self.ready(i))
    }

    /// `POST /api/signup` on node `i`.
    pub fn sign_up(&self, i: usize, username: &str, password: &str) -> (u16, Value) {
        let credentials = json!({ "username": username, "password": password });
        self.post_json(i, "/api/signup", &credentials, None)
    }

    /// `POST /api/login` on node `i`; `None` if the node does not answer.
    pub fn try_login(&self, i: usize, username: &str, password: &str) -> Option<(u16, Value)> {
        let credentials = json!({ "username": username, "password": password });
        let (status, text) = http_post(self.http_addr(i), "/api/login", &credentials, None)?;
        Some((status, parse(i, "POST", "/api/login", status, &text)))
    }

    /// Logs `username` in on node `i` and returns the token; panics unless
    /// the node answers 200 with a token.
    pub fn login(&self, i: usize, username: &str, password: &str) -> String {
        let (status, body) = self
            .try_login(i, username, password)
            .unwrap_or_else(|| panic!("n{i}: POST /api/login: no answer"));
        assert_eq!(status, 200, "n{i}: login of {username}: {body}");
        assert_eq!(body["username"], username, "n{i}: login answer {body}");
        body["token"]
            .as_str()
            .unwrap_or_else(|| panic!("n{i}: login answer without a token: {body}"))
            .to_string()
    }

    /// An admin token from node `i`.
    pub fn admin_token(&self, i: usize) -> String {
        let token = self.login(i, "admin", self.admin_password());
        assert!(!token.is_empty(), "n{i}: empty admin token");
        token
    }

    /// `PUT /api/admin/products/{id}` on node `i` with `patch`.
    pub fn update_product(
        &self,
        i: usize,
        token: Option<&str>,
        id: u64,
        patch: &Value,
    ) -> (u16, Value) {
        self.put_json(i, &format!("/api/admin/products/{id}"), patch, token)
    }

    /// `POST /api/admin/crash` on node `i`: one worker of `service` on
    /// node `target` panics.
    pub fn crash(&self, i: usize, token: &str, service: &str, target: usize) -> (u16, Value) {
        let request = json!({ "service": service, "node": self.name(target) });
        self.post_json(i, "/api/admin/crash", &request, Some(token))
    }
}

/// The JSON `body` of an answer; panics with the request if it is not JSON.
fn parse(i: usize, method: &str, path: &str, status: u16, body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| {
        panic!("n{i}: {method} {path}: {status} with a non-JSON body ({e}): {body:?}")
    })
}
