//! Publishing stock levels from checkout's inventory into the catalog.
//!
//! Levels are absolute (repeating one is harmless) and go through one
//! queue served by one task, in commit order, so the catalog never ends on
//! an older level than the last one published. The task publishes what
//! queued up while it was busy as one round, the latest level of each
//! product once. A full queue drops the
//! level (the next order of that product publishes it again).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::catalog::model::{Product, ProductPatch};
use crate::catalog::CatalogClient;

/// Levels waiting to be published before new ones are dropped.
const QUEUE: usize = 1024;

type Levels = Vec<(u64, u32)>;
/// Levels to publish, and who waits for the catalog versions they made.
type Job = (Levels, Option<oneshot::Sender<Vec<Product>>>);

/// The publishing queue of one checkout replica.
#[derive(Debug, Clone)]
pub struct StockPublisher {
    queue: mpsc::Sender<Job>,
}

impl StockPublisher {
    /// Starts the publishing task; it ends when the publisher is dropped.
    pub fn spawn() -> Self {
        let (queue, mut levels) = mpsc::channel::<Job>(QUEUE);
        tokio::spawn(async move {
            let catalog = CatalogClient::new();
            while let Some(job) = levels.recv().await {
                // Everything queued meanwhile goes in the same round, one
                // update per product with its latest level: under load the
                // catalog (and every replica's search index) sees one change
                // per product per round, not one per order.
                let mut latest = BTreeMap::new();
                let mut waiters = Vec::new();
                let mut next = Some(job);
                while let Some((stock, done)) = next.take() {
                    latest.extend(stock);
                    waiters.extend(done);
                    next = levels.try_recv().ok();
                }
                let mut published = Vec::new();
                for (product_id, available) in latest {
                    let patch = ProductPatch {
                        stock: Some(available),
                        ..ProductPatch::default()
                    };
                    match catalog.update(product_id, patch).await {
                        Ok(product) => published.push(product),
                        Err(err) => {
                            tracing::warn!(product = product_id, error = %err, "cannot publish stock to the catalog");
                        }
                    }
                }
                for done in waiters {
                    let _ = done.send(published.clone());
                }
            }
        });
        Self { queue }
    }

    /// Queues `stock` for publishing.
    pub fn publish(&self, stock: Levels) {
        if self.queue.try_send((stock, None)).is_err() {
            tracing::warn!("stock publishing queue full, dropping levels");
        }
    }

    /// Queues `stock` and waits, at most `timeout`, until it is published;
    /// returns the catalog versions its round made, its products among
    /// them (none after the timeout).
    pub async fn publish_and_wait(&self, stock: Levels, timeout: Duration) -> Vec<Product> {
        let (done, published) = oneshot::channel();
        if self.queue.send((stock, Some(done))).await.is_err() {
            return Vec::new();
        }
        match tokio::time::timeout(timeout, published).await {
            Ok(Ok(products)) => products,
            _ => Vec::new(),
        }
    }
}
