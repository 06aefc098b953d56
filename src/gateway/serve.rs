//! The gateway's accept loop: `axum::serve` with a header-read timeout.
//!
//! `axum::serve` has no knob for how long a client may take to send its
//! request head, so a slowloris client (a header a byte at a time) could
//! hold a connection and a task forever. This loop serves each connection
//! with hyper's HTTP/1 builder and [`HEADER_READ_TIMEOUT`] (HTTP/1 only,
//! like `axum::serve` with axum's default features). Every request carries
//! the peer address as `ConnectInfo<SocketAddr>` for the rate limiter.
//!
//! Shutdown: when `shutdown` resolves the loop stops accepting, asks every
//! open connection to finish its in-flight request and close, and waits
//! for them up to [`SHUTDOWN_GRACE`].

use std::future::Future;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower_service::Service;

use super::limits::HEADER_READ_TIMEOUT;

/// How long in-flight requests get to finish after shutdown begins: longer
/// than the longest route deadline, so no acknowledged work is cut off.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Pause after a failed `accept` (out of file descriptors, say), so the
/// loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` until `shutdown` resolves; see the module docs.
pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            // A router is always ready: `call` needs no `poll_ready` first.
            app.clone().call(request)
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(open, "gateway stopped accepting; draining connections");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = SHUTDOWN_GRACE.as_millis() as u64,
            "connections still open after the grace period"
        );
    }
}
