//! Checkout's voter set, changed by an admin: `POST /api/admin/voters`.
//!
//! A change is one server at a time, `{"add":"n4"}` or `{"remove":"n2"}`,
//! sent to the checkout owner, which commits it through its replicated log
//! before it answers. The answer is the voter set once the change is
//! committed. The owner refuses (409) a change while the previous one is
//! uncommitted, or one that makes no sense (adding a voter, removing a
//! learner or the last voter); a 503 means the outcome is unknown: read
//! `checkout.voters` in `GET /api/cluster` before trying again.
//!
//! The gateway checks only what it can know alone: the body names exactly
//! one valid node name, and a node to add is a reachable member (a voter
//! that never answers would only make every majority harder to reach).
//! Removing a dead voter is allowed: replacing it is what removal is for.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use bazaar_actors::checkout::protocol::VoterChange;
use bazaar_cluster::config::is_valid_name;
use serde::{Deserialize, Serialize};

use super::account::Admin;
use super::checkout::checkout_error;
use super::error::{ApiError, ApiJson};
use super::GatewayState;

/// Body of `POST /api/admin/voters`: exactly one of the fields.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VotersUpdate {
    /// The node to make a voter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<String>,
    /// The voter to make a learner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<String>,
}

/// Answer of `POST /api/admin/voters`.
#[derive(Debug, Serialize, Deserialize)]
pub struct VotersAnswer {
    /// The voter set once the change is committed, sorted.
    pub voters: Vec<String>,
}

impl VotersUpdate {
    /// The one change this body asks for, or why it is not one (422).
    pub fn change(self) -> Result<VoterChange, ApiError> {
        let change = match (self.add, self.remove) {
            (Some(node), None) => VoterChange::Add(node),
            (None, Some(node)) => VoterChange::Remove(node),
            (Some(_), Some(_)) => {
                return Err(ApiError::unprocessable(
                    "one change at a time: give either \"add\" or \"remove\", not both",
                ))
            }
            (None, None) => {
                return Err(ApiError::unprocessable(
                    "give the node to change: {\"add\":\"n4\"} or {\"remove\":\"n2\"}",
                ))
            }
        };
        let (VoterChange::Add(node) | VoterChange::Remove(node)) = &change;
        if !is_valid_name(node) {
            return Err(ApiError::unprocessable(format!(
                "invalid node name {node:?}: use 1 to 64 letters, digits, '-' or '_'"
            )));
        }
        Ok(change)
    }
}

/// `POST /api/admin/voters`: adds or removes one checkout voter; the voter
/// set once committed, 409 when refused, 503 when the outcome is unknown.
pub async fn change_voters(
    State(state): State<GatewayState>,
    Admin(admin): Admin,
    ApiJson(update): ApiJson<VotersUpdate>,
) -> Result<Json<VotersAnswer>, ApiError> {
    let change = update.change()?;
    if let VoterChange::Add(node) = &change {
        let reachable = state
            .view
            .borrow()
            .members
            .get(node)
            .is_some_and(|member| member.state.is_reachable());
        if !reachable {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("{node} is not a reachable member of the cluster: start it before making it a voter"),
            ));
        }
    }
    tracing::info!(admin = %admin.sub, change = ?change, "voter change requested");
    let mut voters = state
        .checkout
        .change_voters(change.clone())
        .await
        .map_err(|failure| {
            tracing::warn!(change = ?change, error = %failure, "voter change failed");
            checkout_error(failure)
        })?;
    voters.sort();
    tracing::info!(admin = %admin.sub, change = ?change, voters = ?voters, "voter change committed");
    Ok(Json(VotersAnswer { voters }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(add: Option<&str>, remove: Option<&str>) -> VotersUpdate {
        VotersUpdate {
            add: add.map(str::to_string),
            remove: remove.map(str::to_string),
        }
    }

    #[test]
    fn a_body_names_exactly_one_valid_change() {
        assert_eq!(
            update(Some("n4"), None).change(),
            Ok(VoterChange::Add("n4".into()))
        );
        assert_eq!(
            update(None, Some("n2")).change(),
            Ok(VoterChange::Remove("n2".into()))
        );
        for bad in [
            update(Some("n4"), Some("n2")),
            update(None, None),
            update(Some(""), None),
            update(None, Some("n 2")),
            update(Some("seed"), None),
        ] {
            let err = bad.change().expect_err("refused");
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{err:?}");
        }
    }
}
