//! `CheckoutClient`: how the gateway reaches checkout. Requests for the
//! owner go to the owner the last answer named, else to this node's
//! replica; one that is not the owner names the owner it follows, and the
//! client asks that one (and remembers it). Placing an order is idempotent by key, so
//! a client may repeat it after any failure.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use bazaar_cluster::directory;
use bazaar_cluster::remote::{self, CallError};

use super::model::Order;
use super::protocol::{
    CheckoutFailure, CheckoutProtocol, CheckoutReply, CheckoutRequest, CheckoutStatus,
    PaymentSettings, VoterChange, CHECKOUT_GROUP,
};
use crate::catalog::model::Product;

/// Timeout of an order: payment latency plus replication.
const ORDER_TIMEOUT: Duration = Duration::from_secs(8);
/// Timeout of reads and settings.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// A client of the checkout service.
#[derive(Debug, Clone, Default)]
pub struct CheckoutClient {
    /// The owner the last answer named, shared by the clones of a client:
    /// requests for the owner go straight to it, not through this node's
    /// replica first.
    owner_hint: Arc<Mutex<Option<String>>>,
}

/// The owner a `NotOwner` answer names (`Some(None)`: it knows none), or
/// `None` for any other answer.
fn not_owner(reply: &CheckoutReply) -> Option<Option<&str>> {
    match reply {
        CheckoutReply::Placed(Err(CheckoutFailure::NotOwner { owner }))
        | CheckoutReply::Done(Err(CheckoutFailure::NotOwner { owner }))
        | CheckoutReply::StockSet(Err(CheckoutFailure::NotOwner { owner }))
        | CheckoutReply::Voters(Err(CheckoutFailure::NotOwner { owner })) => Some(owner.as_deref()),
        _ => None,
    }
}

fn unavailable(err: CallError) -> CheckoutFailure {
    CheckoutFailure::Unavailable(err.to_string())
}

impl CheckoutClient {
    /// A client.
    pub fn new() -> Self {
        Self::default()
    }

    async fn call(
        &self,
        node: Option<&str>,
        request: CheckoutRequest,
        timeout: Duration,
    ) -> Result<CheckoutReply, CheckoutFailure> {
        let replica = match node {
            Some(node) => directory::members_on::<CheckoutProtocol>(CHECKOUT_GROUP, node),
            None => directory::local_members::<CheckoutProtocol>(CHECKOUT_GROUP),
        }
        .into_iter()
        .next()
        .ok_or_else(|| CheckoutFailure::Unavailable("no checkout replica reachable".into()))?;
        remote::call(&replica, request, timeout)
            .await
            .map_err(unavailable)
    }

    /// Sends an owner-only request, following one redirect.
    async fn to_owner(
        &self,
        request: CheckoutRequest,
        timeout: Duration,
    ) -> Result<CheckoutReply, CheckoutFailure> {
        let hint = self.owner_hint.lock().clone();
        let reply = match hint {
            Some(owner) => match self.call(Some(&owner), request.clone(), timeout).await {
                Ok(reply) => reply,
                // Gone or unreachable: ask this node's replica instead.
                Err(_) => {
                    self.owner_hint.lock().take();
                    self.call(None, request.clone(), timeout).await?
                }
            },
            None => self.call(None, request.clone(), timeout).await?,
        };
        let owner = match not_owner(&reply) {
            None => return Ok(reply),
            Some(None) => {
                self.owner_hint.lock().take();
                return Ok(reply);
            }
            Some(Some(owner)) => owner.to_string(),
        };
        *self.owner_hint.lock() = Some(owner.clone());
        self.call(Some(&owner), request, timeout).await
    }

    /// Buys `user`'s cart under `key`: the order and whether this call
    /// created it (false: the key's existing order).
    /// Places `user`'s order under `key`, waiting at most `budget`: the
    /// owner refuses it (`NotPlaced`) if it cannot confirm it in time, and
    /// a reply later than `budget` is `Unavailable` (outcome unknown).
    pub async fn place_order(
        &self,
        user: &str,
        key: &str,
        budget: Duration,
    ) -> Result<(Order, bool), CheckoutFailure> {
        let budget = budget.min(ORDER_TIMEOUT);
        let deadline = tokio::time::Instant::now() + budget;
        let request = CheckoutRequest::PlaceOrder {
            user: user.to_string(),
            key: key.to_string(),
            budget_ms: budget.as_millis() as u64,
        };
        let reply = tokio::time::timeout_at(deadline, self.to_owner(request, budget))
            .await
            .map_err(|_| {
                CheckoutFailure::Unavailable(
                    "no answer before the deadline; outcome unknown, retry with the same key"
                        .into(),
                )
            })??;
        match reply {
            CheckoutReply::Placed(outcome) => outcome,
            other => Err(CheckoutFailure::Unavailable(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// Sets a product's stock through the owner.
    pub async fn set_stock(
        &self,
        product_id: u64,
        stock: u32,
    ) -> Result<Option<Product>, CheckoutFailure> {
        match self
            .to_owner(
                CheckoutRequest::SetStock { product_id, stock },
                ORDER_TIMEOUT,
            )
            .await?
        {
            CheckoutReply::StockSet(outcome) => outcome,
            other => Err(CheckoutFailure::Unavailable(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// Adds or removes one checkout voter through the owner; the voter set
    /// once the change is committed.
    pub async fn change_voters(&self, change: VoterChange) -> Result<Vec<String>, CheckoutFailure> {
        match self
            .to_owner(CheckoutRequest::ChangeVoters(change), ORDER_TIMEOUT)
            .await?
        {
            CheckoutReply::Voters(outcome) => outcome,
            other => Err(CheckoutFailure::Unavailable(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// Committed orders known to this node's replica, of one user or all.
    pub async fn orders(&self, user: Option<&str>) -> Result<Vec<Order>, CheckoutFailure> {
        let request = CheckoutRequest::Orders {
            user: user.map(str::to_string),
        };
        match self.call(None, request, READ_TIMEOUT).await? {
            CheckoutReply::Orders(orders) => Ok(orders),
            other => Err(CheckoutFailure::Unavailable(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// This node's replica's view of ownership.
    pub async fn status(&self) -> Result<CheckoutStatus, CheckoutFailure> {
        match self
            .call(None, CheckoutRequest::Status, READ_TIMEOUT)
            .await?
        {
            CheckoutReply::Status(status) => Ok(status),
            other => Err(CheckoutFailure::Unavailable(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// Sets the simulated payment provider's behaviour on every node;
    /// returns how many replicas took it.
    pub async fn set_payment(&self, settings: PaymentSettings) -> usize {
        let mut updated = 0;
        for replica in directory::members::<CheckoutProtocol>(CHECKOUT_GROUP) {
            let reply = remote::call(
                &replica,
                CheckoutRequest::SetPayment(settings),
                READ_TIMEOUT,
            )
            .await;
            if matches!(reply, Ok(CheckoutReply::Done(Ok(())))) {
                updated += 1;
            }
        }
        updated
    }
}
