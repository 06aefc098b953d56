//! The load's HTTP plumbing: one client per source address, what a
//! transport failure is, and the catalog read before a run (not measured).

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use tokio::time::Instant;

use super::plan::Settings;
use super::stats::Failure;

/// Budget of opening a connection (a dead node refuses at once).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the catalog is retried before the run gives up.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between two rounds of catalog reads.
const PREPARE_RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Products fetched per page while preparing.
const PAGE: usize = 100;
/// Characters kept of an error's body or message in the report.
const MAX_DETAIL_CHARS: usize = 200;

/// A page of `GET /api/products`.
#[derive(Deserialize)]
struct ProductPage {
    items: Vec<ProductItem>,
    total: usize,
}

/// A product as the load needs it.
#[derive(Deserialize)]
pub(super) struct ProductItem {
    /// Product id.
    pub id: u64,
    /// Product name.
    pub name: String,
    /// Units in stock.
    pub stock: u32,
}

/// What kind of transport failure `err` is.
pub(super) fn classify(err: &reqwest::Error) -> Failure {
    if err.is_timeout() {
        return Failure::Timeout;
    }
    if err.is_connect() {
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::ConnectionRefused {
                    return Failure::ConnectRefused;
                }
            }
            source = cause.source();
        }
        return Failure::Connect;
    }
    Failure::Transport
}

/// `err` and its causes, one after another.
pub(super) fn chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// At most [`MAX_DETAIL_CHARS`] characters of `text`.
pub(super) fn shorten(text: &str) -> String {
    text.chars().take(MAX_DETAIL_CHARS).collect()
}

/// One client per source address of `settings` (one unbound client if none).
pub(super) fn clients(settings: &Settings) -> anyhow::Result<Vec<reqwest::Client>> {
    let build = |source: Option<IpAddr>| {
        reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(settings.timeout))
            .local_address(source)
            .build()
            .context("cannot build the http client")
    };
    if settings.sources.is_empty() {
        return Ok(vec![build(None)?]);
    }
    settings
        .sources
        .iter()
        .map(|&source| build(Some(source)))
        .collect()
}

/// The catalog from the first gateway that serves it, trying them in
/// turn for up to [`PREPARE_TIMEOUT`] (a cluster just started may not
/// answer yet).
pub(super) async fn read_any_catalog(
    client: &reqwest::Client,
    gateways: &[String],
) -> anyhow::Result<Vec<ProductItem>> {
    let deadline = Instant::now() + PREPARE_TIMEOUT;
    loop {
        let mut failures = Vec::new();
        for gateway in gateways {
            match read_catalog(client, gateway).await {
                Ok(items) => return Ok(items),
                Err(err) => failures.push(format!("{gateway}: {err:#}")),
            }
        }
        if Instant::now() >= deadline {
            bail!("no gateway served the catalog: {}", failures.join("; "));
        }
        tokio::time::sleep(PREPARE_RETRY_PAUSE).await;
    }
}

/// Every product of the catalog, page by page.
async fn read_catalog(client: &reqwest::Client, gateway: &str) -> anyhow::Result<Vec<ProductItem>> {
    let mut items = Vec::new();
    loop {
        let url = format!("{gateway}/api/products?offset={}&limit={PAGE}", items.len());
        let response = client.get(&url).send().await?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET {url}: {status}");
        }
        let page: ProductPage = response
            .json()
            .await
            .with_context(|| format!("GET {url}"))?;
        let done = page.items.is_empty() || items.len() + page.items.len() >= page.total;
        items.extend(page.items);
        if done {
            return Ok(items);
        }
    }
}
