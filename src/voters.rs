//! `bazaar voters add|remove NODE`: grows or shrinks checkout's voter set
//! from the outside, one node at a time.
//!
//! It logs in as `admin` at `--at` and sends `POST /api/admin/voters`,
//! which answers once the change is committed through checkout's log. The
//! exit status is non-zero unless the change was committed: a refusal
//! (409) says why, and an unknown outcome (503, or no answer in time) says
//! to look at `bazaar status` before trying again, since the change may
//! have been committed after all.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::cli::{VoterTarget, VotersArgs, VotersCommand};
use crate::config;
use crate::gateway::error::ErrorBody;
use crate::gateway::voters::{VotersAnswer, VotersUpdate};

/// Budget of the whole change: more than the gateway's own deadline for
/// it (15 s), so that a late change reads as the gateway's 503.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(20);
/// Budget of the admin login (the password hash takes a moment).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `bazaar voters add|remove`.
pub fn run(args: VotersArgs) -> anyhow::Result<()> {
    let (target, update, done) = match args.change {
        VotersCommand::Add(target) => {
            let update = VotersUpdate {
                add: Some(target.node.clone()),
                remove: None,
            };
            (target, update, "is now a voter")
        }
        VotersCommand::Remove(target) => {
            let update = VotersUpdate {
                add: None,
                remove: Some(target.node.clone()),
            };
            (target, update, "is now a learner")
        }
    };
    let password = admin_password(target.data_dir.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let voters = runtime.block_on(change(&target, &update, &password))?;
    println!("{} {done}", target.node);
    println!("checkout voters: {}", voters.join(", "));
    Ok(())
}

/// The admin password: `DIR/admin-password` with `--data-dir`, else
/// `BAZAAR_ADMIN_PASSWORD`, else `./bazaar-data/admin-password`.
fn admin_password(data_dir: Option<&Path>) -> anyhow::Result<String> {
    if let Some(dir) = data_dir {
        let file = dir.join(config::ADMIN_PASSWORD_FILE);
        return config::load_admin_password(Some(&file))?
            .with_context(|| format!("{} is empty", file.display()));
    }
    if let Some(password) = config::load_admin_password(None)? {
        return Ok(password);
    }
    let file = Path::new(config::DEFAULT_DATA_DIR).join(config::ADMIN_PASSWORD_FILE);
    config::load_admin_password(Some(&file))
        .ok()
        .flatten()
        .with_context(|| {
            format!(
                "no admin password: pass --data-dir (the directory given to bazaar up), \
                 or set {}",
                config::ADMIN_PASSWORD_ENV
            )
        })
}

/// Logs in at `target.at` and sends the change; the voter set once committed.
async fn change(
    target: &VoterTarget,
    update: &VotersUpdate,
    password: &str,
) -> anyhow::Result<Vec<String>> {
    let base = target.at.trim_end_matches('/');
    let client = reqwest::Client::new();
    let token = login(&client, base, password).await?;
    let url = format!("{base}/api/admin/voters");
    let response = client
        .post(&url)
        .bearer_auth(token)
        .json(update)
        .timeout(CHANGE_TIMEOUT)
        .send()
        .await
        .map_err(|err| {
            if err.is_timeout() {
                anyhow::anyhow!(
                    "no answer from {url} within {CHANGE_TIMEOUT:?}: outcome unknown; \
                     check the voters with `bazaar status --at {base}` before trying again"
                )
            } else {
                anyhow::Error::new(err).context(format!("cannot reach {url}"))
            }
        })?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.is_success() {
        let answer: VotersAnswer = serde_json::from_str(&body)
            .with_context(|| format!("unexpected answer from {url}: {body}"))?;
        return Ok(answer.voters);
    }
    Err(failure(status, &error_of(&body), &target.node, base))
}

/// Logs in as `admin`; the bearer token.
async fn login(client: &reqwest::Client, base: &str, password: &str) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Token {
        token: String,
    }
    let url = format!("{base}/api/login");
    let response = client
        .post(&url)
        .json(&json!({ "username": "admin", "password": password }))
        .timeout(LOGIN_TIMEOUT)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    match status {
        StatusCode::OK => Ok(serde_json::from_str::<Token>(&body)
            .with_context(|| format!("unexpected answer from {url}: {body}"))?
            .token),
        StatusCode::UNAUTHORIZED => bail!(
            "admin login at {base} refused: wrong admin password (is --data-dir the one given \
             to bazaar up, or {} the cluster's?)",
            config::ADMIN_PASSWORD_ENV
        ),
        other => bail!("admin login at {url} answered {other}: {}", error_of(&body)),
    }
}

/// The `error` of a JSON error body, else the body itself.
fn error_of(body: &str) -> String {
    serde_json::from_str::<ErrorBody>(body)
        .map(|error| error.error)
        .unwrap_or_else(|_| body.trim().to_string())
}

/// What a failed change tells the operator.
fn failure(status: StatusCode, error: &str, node: &str, base: &str) -> anyhow::Error {
    match status {
        StatusCode::CONFLICT => anyhow::anyhow!("refused, {node} not changed: {error}"),
        StatusCode::SERVICE_UNAVAILABLE => anyhow::anyhow!(
            "outcome unknown ({error}); check the voters with `bazaar status --at {base}` \
             before trying again"
        ),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            anyhow::anyhow!("not allowed ({status}): {error}")
        }
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
            anyhow::anyhow!("bad request: {error}")
        }
        other => anyhow::anyhow!("{base} answered {other}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_whether_anything_changed() {
        let refused = failure(StatusCode::CONFLICT, "voter change refused: x", "n4", "u");
        assert_eq!(
            refused.to_string(),
            "refused, n4 not changed: voter change refused: x"
        );
        let unknown = failure(StatusCode::SERVICE_UNAVAILABLE, "late", "n4", "http://h");
        assert!(unknown.to_string().starts_with("outcome unknown (late)"));
        assert!(unknown.to_string().contains("bazaar status --at http://h"));
        assert_eq!(error_of(r#"{"error":"admin only"}"#), "admin only");
        assert_eq!(error_of(" plain \n"), "plain");
    }
}
