//! Publishing stock levels from checkout's inventory into the catalog.
//!
//! Levels are absolute (repeating one is harmless) and go through one
//! queue served by one task, in commit order, so the catalog never ends on
//! an older level than the last one published. A full queue drops the
//! level (the next order of that product publishes it again).

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::catalog::model::ProductPatch;
use crate::catalog::CatalogClient;

/// Levels waiting to be published before new ones are dropped.
const QUEUE: usize = 1024;

type Levels = Vec<(u64, u32)>;

/// The publishing queue of one checkout replica.
#[derive(Debug)]
pub struct StockPublisher {
    queue: mpsc::Sender<(Levels, Option<oneshot::Sender<()>>)>,
}

impl StockPublisher {
    /// Starts the publishing task; it ends when the publisher is dropped.
    pub fn spawn() -> Self {
        let (queue, mut levels) = mpsc::channel::<(Levels, Option<oneshot::Sender<()>>)>(QUEUE);
        tokio::spawn(async move {
            let catalog = CatalogClient::new();
            while let Some((stock, done)) = levels.recv().await {
                for (product_id, available) in stock {
                    let patch = ProductPatch {
                        stock: Some(available),
                        ..ProductPatch::default()
                    };
                    if let Err(err) = catalog.update(product_id, patch).await {
                        tracing::warn!(product = product_id, error = %err, "cannot publish stock to the catalog");
                    }
                }
                if let Some(done) = done {
                    let _ = done.send(());
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

    /// Queues `stock` and waits, at most `timeout`, until it is published.
    pub async fn publish_and_wait(&self, stock: Levels, timeout: Duration) {
        let (done, published) = oneshot::channel();
        if self.queue.send((stock, Some(done))).await.is_ok() {
            let _ = tokio::time::timeout(timeout, published).await;
        }
    }
}
