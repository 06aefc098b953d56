//! The shop as the load speaks it: the seeded demo users as virtual
//! users, and what each flow sends.
//!
//! - Virtual users are the seeded `user001`..`user100` (password
//!   `DEMO_PASSWORD` of the auth service). A user logs in on the gateway
//!   of the flow that first needs a token, and again after a 401; one
//!   login at a time per user.
//! - A cart change and a checkout carry a fresh `Idempotency-Key` (unique
//!   per run), so repeated runs against the same cluster never replay an
//!   earlier order.
//! - Each user remembers how many units it believes its cart holds, so a
//!   checkout goes to a user with a non-empty cart (when none has one, the
//!   checkout flow puts a unit in first). A checkout claims its user, so
//!   two never race for one cart, and corrects the count from the items
//!   the order really bought. A checkout whose outcome is unknown (a
//!   timeout, a 503) leaves the count as it was; if it did complete, the
//!   next checkout of that cart answers 409 "the cart is empty".
//! - Products put in carts are those in stock (at least
//!   [`MIN_CART_STOCK`] units when the run starts), so the mix does not
//!   turn into stock refusals.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use anyhow::bail;
use bazaar_actors::auth::model::{demo_username, DEMO_PASSWORD, DEMO_USERS};
use futures_util::StreamExt;
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;

use super::http::{chain, classify, clients, read_any_catalog, shorten};
use super::plan::{Flow, Settings};
use super::stats::{Event, Failure, Route};
use crate::gateway::checkout::REQUEST_TIMEOUT_MS;

/// Products added to carts have at least this many units when the run starts.
const MIN_CART_STOCK: u32 = 50;
/// Logins at once before a checkout run.
const PREPARE_LOGINS: usize = 4;
/// Results asked of a search.
const SEARCH_LIMIT: usize = 10;

/// One virtual user.
struct User {
    name: String,
    /// Bearer token once logged in; the lock makes logins one at a time.
    token: Mutex<Option<String>>,
    /// Units the user believes its cart holds.
    cart_units: AtomicU32,
    /// A checkout of this user's cart is under way.
    checking_out: AtomicBool,
}

/// A user taken for a checkout; unmarked when dropped.
struct CartClaim<'a> {
    shop: &'a Shop,
    user: usize,
    /// Units taken from the user's count.
    units: u32,
    /// Whether this claim set the user's `checking_out`.
    marked: bool,
}

impl Drop for CartClaim<'_> {
    fn drop(&mut self) {
        if self.marked {
            self.shop.users[self.user]
                .checking_out
                .store(false, Ordering::Release);
        }
    }
}

/// Units in an order as the checkout answers it (0 if unreadable).
fn units_in(order: &str) -> u32 {
    #[derive(Deserialize)]
    struct Order {
        items: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        quantity: u32,
    }
    serde_json::from_str::<Order>(order)
        .map(|order| order.items.iter().map(|item| item.quantity).sum())
        .unwrap_or(0)
}

/// What the flows share.
pub struct Shop {
    gateways: Vec<String>,
    /// One per source address (or one unbound client).
    clients: Vec<reqwest::Client>,
    users: Vec<User>,
    /// Every product id (browsed).
    products: Vec<u64>,
    /// Products in stock (put in carts).
    stocked: Vec<u64>,
    /// Words of product names (searched).
    words: Vec<String>,
    /// Makes idempotency keys unique across runs.
    run_id: u64,
    next_key: AtomicU64,
    /// A checkout's budget sent to the gateway: the request timeout.
    budget_ms: u64,
    events: mpsc::Sender<Event>,
}

impl Shop {
    /// Clients for `settings`, and the catalog read through the first
    /// gateway that answers (not measured).
    pub async fn prepare(settings: &Settings, events: mpsc::Sender<Event>) -> anyhow::Result<Self> {
        let clients = clients(settings)?;
        let items = read_any_catalog(&clients[0], &settings.gateways).await?;
        let stocked: Vec<u64> = items
            .iter()
            .filter(|p| p.stock >= MIN_CART_STOCK)
            .map(|p| p.id)
            .collect();
        if stocked.is_empty() {
            bail!("no product has {MIN_CART_STOCK} units in stock to put in carts");
        }
        let mut words: Vec<String> = items
            .iter()
            .flat_map(|p| p.name.split_whitespace())
            .filter(|word| word.len() >= 3)
            .map(str::to_lowercase)
            .collect();
        words.sort();
        words.dedup();
        Ok(Self {
            gateways: settings.gateways.clone(),
            clients,
            users: (1..=DEMO_USERS)
                .map(|n| User {
                    name: demo_username(n),
                    token: Mutex::new(None),
                    cart_units: AtomicU32::new(0),
                    checking_out: AtomicBool::new(false),
                })
                .collect(),
            products: items.iter().map(|p| p.id).collect(),
            stocked,
            words,
            run_id: rand::random(),
            next_key: AtomicU64::new(0),
            budget_ms: (settings.timeout.as_millis() as u64).clamp(10, 30_000),
            events,
        })
    }

    /// Runs one arrival of `flow` through gateway `gateway`, scheduled at
    /// `due` in second `second` of the run, and reports every request.
    /// Returns whether every request succeeded.
    pub async fn run(
        &self,
        flow: Flow,
        gateway: usize,
        arrival: u64,
        due: Instant,
        second: u32,
    ) -> Result<(), Failure> {
        let mut call = Call {
            shop: self,
            gateway,
            second,
            client: &self.clients[arrival as usize % self.clients.len()],
            started: due,
        };
        match flow {
            Flow::Browse => {
                let id = self.products[rand::rng().random_range(0..self.products.len())];
                let url = format!("{}/api/products/{id}", self.gateways[gateway]);
                call.send(Route::Product, call.client.get(url))
                    .await
                    .map(drop)
            }
            Flow::Search => {
                let word = &self.words[rand::rng().random_range(0..self.words.len())];
                let url = format!("{}/api/search", self.gateways[gateway]);
                let query = [("q", word.as_str()), ("limit", &SEARCH_LIMIT.to_string())];
                call.send(Route::Search, call.client.get(url).query(&query))
                    .await
                    .map(drop)
            }
            Flow::ViewCart => {
                let user = self.user(rand::rng().random_range(0..self.users.len()), &mut call);
                let token = call.token(user).await?;
                let url = format!("{}/api/cart", self.gateways[gateway]);
                call.authorized(user, Route::Cart, call.client.get(url).bearer_auth(token))
                    .await
                    .map(drop)
            }
            Flow::AddToCart => {
                let user = self.user(rand::rng().random_range(0..self.users.len()), &mut call);
                call.add_to_cart(user).await
            }
            Flow::Checkout => {
                let claim = self.claim_cart();
                let user = self.user(claim.user, &mut call);
                let mut units = claim.units;
                if units == 0 {
                    call.add_to_cart(user).await?;
                    units = user.cart_units.swap(0, Ordering::Relaxed);
                }
                let token = call.token(user).await?;
                let url = format!("{}/api/checkout", self.gateways[gateway]);
                let request = call
                    .client
                    .post(url)
                    .bearer_auth(token)
                    .header("idempotency-key", self.key())
                    .header(REQUEST_TIMEOUT_MS, self.budget_ms);
                match call.authorized(user, Route::Checkout, request).await {
                    Ok(order) => {
                        // Units added while the order was placed may have been bought too.
                        let extra = units_in(&order).saturating_sub(units);
                        let _ = user.cart_units.fetch_update(
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                            |left| Some(left.saturating_sub(extra)),
                        );
                        Ok(())
                    }
                    // The cart was empty after all: nothing to give back.
                    Err(failure @ Failure::Status(409)) => Err(failure),
                    Err(failure) => {
                        // Not bought, or unknown: count the units as still in the cart.
                        user.cart_units.fetch_add(units, Ordering::Relaxed);
                        Err(failure)
                    }
                }
            }
        }
    }

    /// Logs every user in before the run (not measured), a few at a time:
    /// with the checkout mix the logins' password hashing would otherwise
    /// crowd the first seconds of the run. A user whose login fails logs
    /// in during the run instead.
    pub async fn log_in_everyone(&self) {
        let logins = self
            .users
            .iter()
            .enumerate()
            .map(|(index, user)| async move {
                let client = &self.clients[index % self.clients.len()];
                let gateway = &self.gateways[index % self.gateways.len()];
                let body = json!({ "username": user.name, "password": DEMO_PASSWORD });
                let answer = client
                    .post(format!("{gateway}/api/login"))
                    .json(&body)
                    .send()
                    .await;
                #[derive(Deserialize)]
                struct Login {
                    token: String,
                }
                if let Ok(response) = answer.and_then(|r| r.error_for_status()) {
                    if let Ok(login) = response.json::<Login>().await {
                        *user.token.lock().await = Some(login.token);
                    }
                }
            });
        futures_util::stream::iter(logins)
            .buffer_unordered(PREPARE_LOGINS)
            .collect::<Vec<()>>()
            .await;
    }

    /// User `index`, whose requests go through its own source address.
    fn user<'a>(&'a self, index: usize, call: &mut Call<'a>) -> &'a User {
        call.client = &self.clients[index % self.clients.len()];
        &self.users[index]
    }

    /// A user for a checkout, marked as checking out until the claim is
    /// dropped so no other checkout takes the same cart: a random one whose
    /// cart holds something, with the units it holds (taken from its
    /// count), else a random one with 0; when every user is checking out
    /// (a stalled owner), a random user without the mark.
    fn claim_cart(&self) -> CartClaim<'_> {
        let count = self.users.len();
        let start = rand::rng().random_range(0..count);
        let order = || (0..count).map(move |offset| (start + offset) % count);
        let mark = |i: usize| {
            self.users[i]
                .checking_out
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        };
        let with_units = order().find_map(|i| {
            if self.users[i].cart_units.load(Ordering::Relaxed) == 0 || !mark(i) {
                return None;
            }
            Some((i, self.users[i].cart_units.swap(0, Ordering::Relaxed)))
        });
        let (user, units, marked) = match with_units {
            Some((i, units)) => (i, units, true),
            None => match order().find(|&i| mark(i)) {
                Some(i) => (i, self.users[i].cart_units.swap(0, Ordering::Relaxed), true),
                None => (start, 0, false),
            },
        };
        CartClaim {
            shop: self,
            user,
            units,
            marked,
        }
    }

    fn key(&self) -> String {
        let n = self.next_key.fetch_add(1, Ordering::Relaxed);
        format!("load-{:016x}-{n}", self.run_id)
    }
}

/// The requests of one arrival.
struct Call<'a> {
    shop: &'a Shop,
    gateway: usize,
    second: u32,
    client: &'a reqwest::Client,
    /// When the next request counts from: the schedule for the first.
    started: Instant,
}

impl Call<'_> {
    /// Sends `request`, reports its outcome, returns its body on a 2xx.
    async fn send(
        &mut self,
        route: Route,
        request: reqwest::RequestBuilder,
    ) -> Result<String, Failure> {
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status();
                match response.text().await {
                    Ok(body) if status.is_success() => Ok(body),
                    Ok(body) if status == 503 && body.contains(r#""order_placed":false"#) => {
                        Err((Failure::Refused, body))
                    }
                    Ok(body) => Err((Failure::Status(status.as_u16()), body)),
                    Err(err) => Err((classify(&err), chain(&err))),
                }
            }
            Err(err) => Err((classify(&err), chain(&err))),
        };
        let now = Instant::now();
        let latency_us = now.saturating_duration_since(self.started).as_micros() as u64;
        self.started = now;
        let event = Event::Request {
            route,
            gateway: self.gateway,
            second: self.second,
            result: outcome.as_ref().map(|_| latency_us).map_err(|f| f.0),
            detail: outcome.as_ref().err().map(|f| shorten(&f.1)),
        };
        // The receiver lives until every arrival has ended.
        let _ = self.shop.events.send(event).await;
        outcome.map_err(|f| f.0)
    }

    /// Sends a request that needs `user`'s token and returns the answer's
    /// body; a 401 forgets the token.
    async fn authorized(
        &mut self,
        user: &User,
        route: Route,
        request: reqwest::RequestBuilder,
    ) -> Result<String, Failure> {
        let outcome = self.send(route, request).await;
        if outcome == Err(Failure::Status(401)) {
            user.token.lock().await.take();
        }
        outcome
    }

    /// `user`'s token, logging in first if it has none.
    async fn token(&mut self, user: &User) -> Result<String, Failure> {
        let mut token = user.token.lock().await;
        if let Some(token) = token.as_ref() {
            return Ok(token.clone());
        }
        // Waiting for another flow's login is part of this flow's time.
        let url = format!("{}/api/login", self.shop.gateways[self.gateway]);
        let body = json!({ "username": user.name, "password": DEMO_PASSWORD });
        let answer = self
            .send(Route::Login, self.client.post(url).json(&body))
            .await?;
        #[derive(Deserialize)]
        struct Login {
            token: String,
        }
        let login: Login = serde_json::from_str(&answer).map_err(|_| Failure::Transport)?;
        *token = Some(login.token.clone());
        Ok(login.token)
    }

    /// Puts one unit of a stocked product in `user`'s cart.
    async fn add_to_cart(&mut self, user: &User) -> Result<(), Failure> {
        let token = self.token(user).await?;
        let product_id = self.shop.stocked[rand::rng().random_range(0..self.shop.stocked.len())];
        let url = format!("{}/api/cart/items", self.shop.gateways[self.gateway]);
        let request = self
            .client
            .post(url)
            .bearer_auth(token)
            .header("idempotency-key", self.shop.key())
            .json(&json!({ "product_id": product_id, "quantity": 1 }));
        self.authorized(user, Route::AddItem, request).await?;
        user.cart_units.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
