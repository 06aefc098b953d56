//! Reading a lane's entries, with a short busy poll while traffic flows.
//!
//! A thread that sleeps on a socket costs a wake-up when bytes arrive, and
//! on a virtual machine that wake-up is slow: the idle vCPU has halted and
//! the host must run it again (about 40 µs per wake here, so a blocking
//! ping-pong over loopback manages only ~11k round trips/s, against ~130k/s
//! when both ends poll). So for [`busy_poll`] after its last bytes, a
//! reader keeps trying its socket directly, yielding to the runtime
//! between tries, and only then waits for readiness as usual. This is the
//! same trade as the BEAM's scheduler busy wait: CPU spent right after
//! traffic, for latency while traffic continues; an idle lane spins for at
//! most one window and then sleeps.
//!
//! Entries are returned as slices of the reader's own buffer (no copy);
//! the buffer grows for an entry larger than itself (at most
//! [`frame::MAX_BODY`], checked before growing) and shrinks back once it
//! is drained.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::Interest;

use super::{frame, socket};

/// Bytes read per syscall, and the size the buffer returns to.
const READ_BUFFER: usize = 64 * 1024;

/// How long a reader polls its socket after its last bytes; see the module
/// doc. Microseconds; 0 turns busy polling off.
static BUSY_POLL_US: AtomicU64 = AtomicU64::new(DEFAULT_BUSY_POLL.as_micros() as u64);

/// The busy-poll window a node starts with.
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(200);

/// Sets how long lane readers of this process poll after their last bytes
/// (zero: never, always wait for readiness).
pub fn set_busy_poll(window: Duration) {
    let micros = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);
    BUSY_POLL_US.store(micros, Ordering::Relaxed);
}

/// The current busy-poll window.
fn busy_poll() -> Duration {
    Duration::from_micros(BUSY_POLL_US.load(Ordering::Relaxed))
}

/// Reads length-prefixed entries from one lane connection.
pub(super) struct EntryReader {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    last_bytes: Instant,
    /// Busy-poll window, read from [`busy_poll`] when the reader starts.
    window: Duration,
}

impl EntryReader {
    pub(super) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            last_bytes: Instant::now(),
            window: busy_poll(),
        }
    }

    /// The connection it reads.
    pub(super) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The next entry's body; `None` when the peer closed the connection
    /// between entries. The length prefix is checked against
    /// [`frame::MAX_BODY`] before anything is allocated.
    pub(super) async fn next(&mut self) -> Result<Option<&[u8]>, String> {
        if !self.fill_to(frame::LEN_BYTES).await? {
            return Ok(None);
        }
        let mut prefix = [0u8; frame::LEN_BYTES];
        prefix.copy_from_slice(&self.buf[self.start..self.start + frame::LEN_BYTES]);
        let len = frame::body_len(prefix).map_err(|err| err.to_string())?;
        if !self.fill_to(frame::LEN_BYTES + len).await? {
            return Err("the peer closed the lane inside an entry".to_string());
        }
        let body = self.start + frame::LEN_BYTES;
        self.start = body + len;
        Ok(Some(&self.buf[body..body + len]))
    }

    /// Reads until `need` unconsumed bytes are buffered; `false` on end of
    /// stream.
    async fn fill_to(&mut self, need: usize) -> Result<bool, String> {
        while self.end - self.start < need {
            self.make_room(need);
            let read = self
                .recv()
                .await
                .map_err(|err| format!("lane read failed: {err}"))?;
            if read == 0 {
                if self.start == self.end && need == frame::LEN_BYTES {
                    return Ok(false);
                }
                return Err("the peer closed the lane inside an entry".to_string());
            }
            self.end += read;
        }
        Ok(true)
    }

    /// Moves the unconsumed bytes to the front and sizes the buffer so that
    /// `need` bytes fit, shrinking it back after a large entry.
    fn make_room(&mut self, need: usize) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = need.max(READ_BUFFER);
        if self.buf.len() < want || (self.end == 0 && self.buf.len() > want) {
            self.buf.resize(want, 0);
            self.buf.shrink_to(want);
        }
    }

    /// One read into the free part of the buffer: busy polling while the
    /// last bytes are recent, otherwise waiting for readiness (see
    /// [`socket`] for why the socket is not always registered).
    async fn recv(&mut self) -> std::io::Result<usize> {
        let spare = &mut self.buf[self.end..];
        loop {
            match (&self.stream).read(spare) {
                Ok(read) => {
                    self.last_bytes = Instant::now();
                    return Ok(read);
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    if self.last_bytes.elapsed() < self.window {
                        tokio::task::yield_now().await;
                    } else {
                        socket::wait(&self.stream, Interest::READABLE).await?;
                    }
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
}

#[cfg(test)]
mod tests;
