//! A lane's socket, kept out of the runtime's reactor except while a task
//! actually waits on it.
//!
//! A socket registered with the reactor wakes the thread blocked in
//! `epoll_wait` on every arrival, and the sending process pays for that
//! wake inside its `send` (on a virtual machine, an inter-processor
//! interrupt to a halted vCPU). A busy-polling [reader](super::reader)
//! does not need that wake: it is already looking. So a lane holds plain
//! non-blocking `std` sockets, one duplicate per task (reader, writer),
//! and registers one with the reactor only for the span of a wait
//! ([`wait`]), for the one readiness the task waits for. While traffic
//! flows, nothing is registered and an arrival wakes nobody.
//!
//! The duplicates share one connection: dropping one does not close it,
//! so the lane [`shut`]s it explicitly when it ends.

use std::io::{ErrorKind, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Turns a connected runtime stream into two plain non-blocking
/// duplicates (`into_std` keeps the socket non-blocking): one to read, one
/// to write.
pub(super) fn split(stream: tokio::net::TcpStream) -> std::io::Result<(TcpStream, TcpStream)> {
    let stream = stream.into_std()?;
    let writer = stream.try_clone()?;
    Ok((stream, writer))
}

/// Waits until `stream` is ready for `interest`, registered with the
/// reactor only for this wait. A readiness that came before the call is
/// reported at once (registration reports the current state).
pub(super) async fn wait(stream: &TcpStream, interest: Interest) -> std::io::Result<()> {
    // Registered by a borrowed descriptor: dropping the registration
    // deregisters it and leaves the socket open.
    // SAFETY: the descriptor stays open and the same for the registration's
    // whole life, which ends with this function while `stream` is borrowed.
    let registered = unsafe { AsyncFd::register_with_interest(stream.as_fd(), interest) }?;
    let _ready = registered.ready(interest).await?;
    Ok(())
}

/// Writes all of `bytes`, waiting for room when the socket's buffer is full.
pub(super) async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match (&*stream).write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(written) => bytes = &bytes[written..],
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                wait(stream, Interest::WRITABLE).await?;
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Ends the connection for every duplicate: a blocked or polling reader
/// sees the end at once, and the peer sees it too.
pub(super) fn shut(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Both);
}
