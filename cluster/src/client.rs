//! A typed client for one service group: every call has a timeout, and
//! idempotent calls are retried on another member when one fails.
//!
//! Each attempt resolves the group again through the [`directory`], so a
//! member that restarted (new actor id) or a node that left is never called
//! twice by mistake. A failed non-idempotent call is not retried: its
//! outcome is unknown and the caller must decide (for instance with an
//! idempotency key).
//!
//! Every call is counted in `bazaar_service_calls_total{group,outcome}`
//! (outcome `ok`, `error` or `no_member`) and timed, retries included, in
//! `bazaar_service_call_duration_seconds{group}`; `group` is the service
//! group without its `@node` scope, so the label set stays bounded.
//!
//! [`directory`]: crate::directory

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use ractor::{ActorId, ActorRef};

use crate::directory;
use crate::remote::{self, CallError, Protocol, ServiceMsg};

/// How long a call waits for a member to appear (a service restarting).
const MEMBER_WAIT: Duration = Duration::from_millis(300);
/// Pause between two lookups while no member is there.
const MEMBER_POLL: Duration = Duration::from_millis(10);

/// Whether a request may be sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Safe to repeat: a query, or a command with an idempotency key.
    Idempotent,
    /// Must not be repeated blindly.
    NotIdempotent,
}

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No member of the group is reachable.
    #[error("no member of {group} is available")]
    NoMember {
        /// The service group.
        group: String,
    },
    /// The last attempt failed; earlier ones (if any) failed too.
    #[error("{group}: {error} (after {attempts} attempts)")]
    Failed {
        /// The service group.
        group: String,
        /// Attempts made.
        attempts: usize,
        /// The last error.
        error: CallError,
    },
}

impl ClientError {
    /// True if the outcome is known to be "not applied" (no member was
    /// called), so even a non-idempotent request may be sent again.
    pub fn never_sent(&self) -> bool {
        matches!(self, Self::NoMember { .. })
    }
}

/// A client of the members of one service group.
pub struct ServiceClient<P> {
    group: String,
    timeout: Duration,
    max_attempts: usize,
    protocol: PhantomData<fn() -> P>,
}

impl<P> std::fmt::Debug for ServiceClient<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("group", &self.group)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

impl<P> Clone for ServiceClient<P> {
    fn clone(&self) -> Self {
        Self {
            group: self.group.clone(),
            timeout: self.timeout,
            max_attempts: self.max_attempts,
            protocol: PhantomData,
        }
    }
}

impl<P: Protocol> ServiceClient<P>
where
    P::Request: Clone,
{
    /// A client of `group` with a per-attempt `timeout` and up to
    /// `max_attempts` attempts for idempotent calls.
    pub fn new(group: impl Into<String>, timeout: Duration, max_attempts: usize) -> Self {
        Self {
            group: group.into(),
            timeout,
            max_attempts: max_attempts.max(1),
            protocol: PhantomData,
        }
    }

    /// The group this client calls.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Calls a member, preferring this node; retries idempotent requests on
    /// other members.
    pub async fn call(
        &self,
        request: P::Request,
        idempotency: Idempotency,
    ) -> Result<P::Reply, ClientError> {
        self.call_in(&self.group, request, idempotency).await
    }

    /// Calls a member running on `node`.
    pub async fn call_on(
        &self,
        node: &str,
        request: P::Request,
        idempotency: Idempotency,
    ) -> Result<P::Reply, ClientError> {
        self.call_in(
            &directory::group_on(&self.group, node),
            request,
            idempotency,
        )
        .await
    }

    async fn call_in(
        &self,
        group: &str,
        request: P::Request,
        idempotency: Idempotency,
    ) -> Result<P::Reply, ClientError> {
        let started = Instant::now();
        let result = self.attempt_in(group, request, idempotency).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(ClientError::NoMember { .. }) => "no_member",
            Err(ClientError::Failed { .. }) => "error",
        };
        let service = service_label(&self.group);
        metrics::counter!("bazaar_service_calls_total", "service" => service.clone(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!("bazaar_service_call_duration_seconds", "service" => service)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// The attempts of one call, without the accounting.
    async fn attempt_in(
        &self,
        group: &str,
        request: P::Request,
        idempotency: Idempotency,
    ) -> Result<P::Reply, ClientError> {
        let attempts = match idempotency {
            Idempotency::Idempotent => self.max_attempts,
            Idempotency::NotIdempotent => 1,
        };
        let mut tried: Vec<ActorId> = Vec::new();
        let mut last_error = None;
        for attempt in 1..=attempts {
            let Some(member) = self.pick(group, &tried).await else {
                break;
            };
            tried.push(member.get_id());
            match remote::call(&member, request.clone(), self.timeout).await {
                Ok(reply) => return Ok(reply),
                Err(error) => {
                    tracing::debug!(group, attempt, %error, "service call failed");
                    let retry = error.is_retryable();
                    last_error = Some(error);
                    if !retry {
                        break;
                    }
                }
            }
        }
        match last_error {
            Some(error) => Err(ClientError::Failed {
                group: group.to_string(),
                attempts: tried.len(),
                error,
            }),
            None => Err(ClientError::NoMember {
                group: group.to_string(),
            }),
        }
    }

    /// A member not yet tried, waiting briefly if none is there; when every
    /// member was tried, one of them again.
    async fn pick(&self, group: &str, tried: &[ActorId]) -> Option<ActorRef<ServiceMsg<P>>> {
        let deadline = Instant::now() + MEMBER_WAIT;
        loop {
            let members = directory::members::<P>(group);
            let fresh = members
                .iter()
                .find(|member| !tried.contains(&member.get_id()))
                .cloned();
            if let Some(member) = fresh.or_else(|| members.into_iter().next()) {
                return Some(member);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(MEMBER_POLL).await;
        }
    }

    /// Sends `request` to a member on `node` when the member is expected to
    /// fail instead of answering (crash injection): a missing reply is fine,
    /// only "no member there" is an error.
    pub async fn deliver_on(&self, node: &str, request: P::Request) -> Result<(), ClientError> {
        match self
            .call_on(node, request, Idempotency::NotIdempotent)
            .await
        {
            Err(err @ ClientError::NoMember { .. }) => Err(err),
            _ => Ok(()),
        }
    }

    /// Casts `request` to every member on other nodes; returns how many.
    pub fn cast_to_remote_members(&self, request: &P::Request) -> usize {
        directory::remote_members::<P>(&self.group)
            .iter()
            .filter(|member| remote::cast(member, request.clone()).is_ok())
            .count()
    }
}

/// The `service` label of calls to `group`: the group's first name after
/// `bazaar.` (`bazaar.cart.backup` is the cart's), the label the services'
/// own metrics carry, so that the two join.
fn service_label(group: &str) -> String {
    let name = group.strip_prefix("bazaar.").unwrap_or(group);
    name.split('.').next().unwrap_or(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::service_label;

    #[test]
    fn calls_are_labelled_by_the_service_of_their_group() {
        assert_eq!(service_label("bazaar.catalog"), "catalog");
        assert_eq!(service_label("bazaar.cart.backup"), "cart");
        assert_eq!(service_label("other"), "other");
    }
}
