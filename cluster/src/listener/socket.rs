//! Socket options every cluster connection gets, inbound and outbound:
//! no Nagle delay, TCP keepalive, and `TCP_USER_TIMEOUT`, so that a peer
//! that disappears without closing (power loss, cable cut) is dropped by
//! the kernel even when no application timer is looking.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

/// Keepalive and user-timeout settings.
#[derive(Debug, Clone, Copy)]
pub struct SocketConfig {
    /// Idle time before the first keepalive probe.
    pub keepalive_idle: Duration,
    /// Time between keepalive probes.
    pub keepalive_interval: Duration,
    /// Unanswered probes before the connection is dropped.
    pub keepalive_retries: u32,
    /// Longest time sent data may stay unacknowledged.
    pub user_timeout: Duration,
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            keepalive_idle: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(5),
            keepalive_retries: 3,
            user_timeout: Duration::from_secs(20),
        }
    }
}

/// Applies `config` to a connected cluster socket.
pub fn tune(stream: &TcpStream, config: &SocketConfig) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let socket = SockRef::from(stream);
    let keepalive = TcpKeepalive::new()
        .with_time(config.keepalive_idle)
        .with_interval(config.keepalive_interval)
        .with_retries(config.keepalive_retries);
    socket.set_tcp_keepalive(&keepalive)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    socket.set_tcp_user_timeout(Some(config.user_timeout))?;
    Ok(())
}
