//! `CartClient`: how the gateway and other services (checkout) use carts.
//!
//! Every request goes to the workers of the node that owns the user's
//! shard. A client made [`with_view`](CartClient::with_view) computes the
//! owner from this node's membership view; one made with
//! [`new`](CartClient::new) asks any cart worker (this node's first) and
//! follows its `NotOwner` answer, one local hop more. Both requests are
//! idempotent (a change by its request id), so the client retries until
//! [`DEADLINE`]: after a timeout or a lost node (outcome unknown), after
//! `Unavailable` (backup not confirming, shard being handed over), and it
//! follows `NotOwner` answers to the owner they name. Only the last error
//! is reported.
//!
//! One answer is not retried: `NoMajority` from this node's own workers.
//! This node's view then does not reach a majority of the voters, so no
//! node it can reach serves carts, and waiting would only turn a refusal
//! into a slow one: the client fails at once (the gateway answers 503 with
//! `Retry-After`). `NoMajority` from another node only says that node is
//! cut off; the client asks this node's workers at once, which either
//! refuse the same way (fail at once) or name an owner to follow or wait
//! for.

use std::time::Duration;

use bazaar_cluster::directory;
use bazaar_cluster::remote;
use bazaar_cluster::MembershipView;
use tokio::sync::watch;
use tokio::time::Instant;

use super::model::{Cart, CartChange, CartError, RequestId};
use super::owner_of;
use super::protocol::{CartProtocol, CartReply, CartRequest, CART_GROUP};

/// Timeout of one call to an owner: covers a shard sync (a pull and a push)
/// and the backup's confirmation.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a request keeps retrying: longer than failure detection of a
/// frozen node (about 1.5 s), shorter than the gateway's request timeout.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// First pause between two attempts; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(400);

/// Why a cart request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartClientError {
    /// The change breaks a cart rule.
    #[error(transparent)]
    Rejected(#[from] CartError),
    /// No owner served the request before the deadline; for a change, its
    /// outcome is unknown: retry with the same request id.
    #[error("cart unavailable: {0}")]
    Unavailable(String),
}

impl CartClientError {
    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A client of the cart service.
#[derive(Debug, Clone, Default)]
pub struct CartClient {
    /// Where owners are computed from; without it, any worker redirects.
    view: Option<watch::Receiver<MembershipView>>,
}

/// Where one attempt goes.
enum Target {
    /// The workers of this node, the owner as someone sees it.
    Node(String),
    /// Any cart worker, this node's first: it names the owner.
    Any,
}

impl CartClient {
    /// A client that learns owners from the cart workers' answers.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client that computes owners from `view` (this node's membership).
    pub fn with_view(view: watch::Receiver<MembershipView>) -> Self {
        Self { view: Some(view) }
    }

    /// `user`'s cart (empty, version 0, if never changed).
    pub async fn get(&self, user: &str) -> Result<Cart, CartClientError> {
        let request = CartRequest::Get {
            user: user.to_string(),
        };
        self.call(user, request).await
    }

    /// Applies `change` to `user`'s cart once, however often it is retried
    /// with the same `request_id`; the cart after it.
    pub async fn change(
        &self,
        user: &str,
        change: CartChange,
        request_id: RequestId,
    ) -> Result<Cart, CartClientError> {
        let request = CartRequest::Change {
            user: user.to_string(),
            change,
            request_id,
        };
        self.call(user, request).await
    }

    /// Empties `user`'s cart, with a fresh request id (retried internally
    /// with that id). A caller that retries on its own should use
    /// [`clear_once`](Self::clear_once).
    pub async fn clear(&self, user: &str) -> Result<Cart, CartClientError> {
        self.clear_once(user, RequestId::random()).await
    }

    /// Empties `user`'s cart once per `request_id` (checkout: derive it
    /// from the order with [`RequestId::from_key`]).
    pub async fn clear_once(
        &self,
        user: &str,
        request_id: RequestId,
    ) -> Result<Cart, CartClientError> {
        self.change(user, CartChange::Clear, request_id).await
    }

    /// Makes one cart worker on `node` fail.
    pub async fn crash(&self, node: &str) -> Result<(), CartClientError> {
        let Some(worker) = directory::members_on::<CartProtocol>(CART_GROUP, node)
            .into_iter()
            .next()
        else {
            return Err(CartClientError::Unavailable(format!(
                "no cart worker on {node}"
            )));
        };
        // The worker fails instead of answering: no reply is the expected outcome.
        let _ = remote::call(&worker, CartRequest::Crash, CALL_TIMEOUT).await;
        Ok(())
    }

    /// This node's name, when the client has its view.
    fn local_node(&self) -> Option<String> {
        Some(self.view.as_ref()?.borrow().local.clone())
    }

    async fn call(&self, user: &str, request: CartRequest) -> Result<Cart, CartClientError> {
        let deadline = Instant::now() + DEADLINE;
        let local = self.local_node();
        let mut backoff = FIRST_BACKOFF;
        let mut hint: Option<String> = None;
        // At most one redirect and one look at this node's own majority
        // between two pauses.
        let mut redirected = false;
        let mut asked_here = false;
        let mut last_error;
        loop {
            let computed = || owner_of(&self.view.as_ref()?.borrow(), user);
            let target = match hint.take().or_else(computed) {
                Some(node) => Target::Node(node),
                None => Target::Any,
            };
            let timeout = CALL_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
            match attempt(target, local.as_deref(), request.clone(), timeout).await {
                Ok(Outcome::Done(result)) => return result,
                Ok(Outcome::Redirect(to)) => {
                    last_error = format!("owner moved to {to}");
                    hint = Some(to);
                    // Follow one redirect at once; views that disagree back
                    // and forth wait like any other failure.
                    if !redirected && Instant::now() < deadline {
                        redirected = true;
                        continue;
                    }
                }
                Ok(Outcome::NoMajority { reason, here: true }) => {
                    tracing::debug!(%user, %reason, "cart request refused here: no majority of the voters");
                    return Err(CartClientError::Unavailable(reason));
                }
                Ok(Outcome::NoMajority {
                    reason,
                    here: false,
                }) => {
                    last_error = reason;
                    if let Some(local) = local.as_ref().filter(|_| !asked_here) {
                        asked_here = true;
                        hint = Some(local.clone());
                        continue;
                    }
                }
                Err(reason) => last_error = reason,
            }
            redirected = false;
            asked_here = false;
            if Instant::now() + backoff >= deadline {
                break;
            }
            tracing::debug!(
                %user,
                error = %last_error,
                backoff_ms = backoff.as_millis() as u64,
                "cart request failed, retrying"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        Err(CartClientError::Unavailable(last_error))
    }
}

/// What one attempt came to.
enum Outcome {
    /// A final answer.
    Done(Result<Cart, CartClientError>),
    /// Another node owns the cart, as the callee sees it.
    Redirect(String),
    /// The callee's view does not reach a majority of the voters; `here`
    /// if the callee is this node.
    NoMajority {
        /// The callee's reason.
        reason: String,
        /// The callee runs on this node.
        here: bool,
    },
}

/// One call to a worker of `target`; `local` is this node's name, if known.
async fn attempt(
    target: Target,
    local: Option<&str>,
    request: CartRequest,
    timeout: Duration,
) -> Result<Outcome, String> {
    let (worker, asked) = match &target {
        Target::Node(node) => (
            directory::members_on::<CartProtocol>(CART_GROUP, node)
                .into_iter()
                .next(),
            node.as_str(),
        ),
        Target::Any => (
            directory::members::<CartProtocol>(CART_GROUP)
                .into_iter()
                .next(),
            "a cart worker",
        ),
    };
    let Some(worker) = worker else {
        return Err(format!("no cart worker on {asked}"));
    };
    let here = match &target {
        Target::Node(node) => local == Some(node.as_str()),
        // Any worker is this node's first, if it runs one.
        Target::Any => worker.get_id().is_local(),
    };
    match remote::call(&worker, request, timeout).await {
        Ok(CartReply::Cart(cart)) => Ok(Outcome::Done(Ok(cart))),
        Ok(CartReply::Rejected(err)) => Ok(Outcome::Done(Err(err.into()))),
        Ok(CartReply::NotOwner { owner: Some(to) }) if to != asked => Ok(Outcome::Redirect(to)),
        Ok(CartReply::NotOwner { .. }) => Err(format!("{asked} does not own this cart")),
        Ok(CartReply::Unavailable(reason)) => Err(format!("{asked}: {reason}")),
        Ok(CartReply::NoMajority(reason)) => Ok(Outcome::NoMajority { reason, here }),
        Ok(other) => Err(format!("unexpected reply from {asked}: {other:?}")),
        Err(err) => Err(format!("{asked}: {err}")),
    }
}
