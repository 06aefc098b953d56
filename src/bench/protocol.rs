//! The messages the benchmark sends, one type per system, and the counter
//! every receiver shares.
//!
//! Each system carries the same three things: a payload as a cast, a
//! payload as a call (answered with the payload's length, so a reply also
//! proves the bytes arrived whole), and a drain call `Drain(n)` that is
//! answered once the receiver has counted `n` casts. A cast measurement
//! ends when the drain is answered: it measures what the receiver got, not
//! what the sender enqueued.

use std::collections::HashMap;
use std::fmt;

use bazaar_cluster::remote::Protocol;
use ractor::RpcReplyPort;
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// pg group of the Bazaar receiver in the peer process.
pub const BENCH_GROUP: &str = "bazaar.bench";
/// pg group of the Bazaar receivers of local workloads.
pub const LOCAL_BENCH_GROUP: &str = "bazaar.bench.local";
/// pg group of the plain ractor_cluster receiver in the peer process.
pub const RAW_GROUP: &str = "bench.raw";
/// Node name of the process that runs `bazaar bench`.
pub const DRIVER_NODE: &str = "bench-driver";
/// Node name of the peer process.
pub const PEER_NODE: &str = "bench-peer";

/// Bazaar's benchmark protocol.
pub struct BenchProtocol;

impl Protocol for BenchProtocol {
    const NAME: &'static str = "bazaar.bench.v1";
    type Request = BenchRequest;
    /// A payload call answers the payload's length; a drain the casts counted.
    type Reply = u64;
}

/// Requests of [`BenchProtocol`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BenchRequest {
    /// Bytes to count (cast) or to acknowledge with their length (call).
    Payload(Payload),
    /// Answer once this many casts arrived since the last drain.
    Drain {
        /// Casts the sender sent.
        expected: u64,
    },
    /// A numbered cast (counted like a payload): each sender's numbers
    /// must arrive in increasing order. Used by the lane tests.
    Sequenced {
        /// Who sent it.
        sender: u32,
        /// Its number, increasing per sender.
        seq: u64,
    },
    /// Answer how many sequenced casts so far arrived out of order.
    Disorder,
}

/// Opaque bytes, encoded as one byte string rather than a sequence of
/// integers, as a real service would carry a blob.
#[derive(Clone, PartialEq, Eq)]
pub struct Payload(pub Vec<u8>);

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload(<{} bytes>)", self.0.len())
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_byte_buf(PayloadVisitor)
    }
}

struct PayloadVisitor;

impl<'de> serde::de::Visitor<'de> for PayloadVisitor {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Payload, E> {
        Ok(Payload(bytes.to_vec()))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Payload, E> {
        Ok(Payload(bytes))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Payload, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64 * 1024));
        while let Some(byte) = seq.next_element()? {
            bytes.push(byte);
        }
        Ok(Payload(bytes))
    }
}

/// The plain ractor / ractor_cluster baseline's message: the same three
/// requests with ractor's own `BytesConvertable` encoding (a `Vec<u8>` is
/// sent as is). Sent to a local actor it is moved, never encoded.
#[derive(RactorClusterMessage)]
pub enum RawMsg {
    /// Bytes to count.
    Cast(Vec<u8>),
    /// Bytes to acknowledge with their length.
    #[rpc]
    Call(Vec<u8>, RpcReplyPort<u64>),
    /// Answer once this many casts arrived since the last drain.
    #[rpc]
    Drain(u64, RpcReplyPort<u64>),
}

/// Counts casts and holds at most one drain until its count is reached.
///
/// Invariant: a drain is answered exactly when `expected` casts have been
/// counted since the previous drain was answered; its count is then taken
/// off, so the next measurement starts from what is left (zero normally).
/// A new drain replaces a pending one (whose caller gave up).
#[derive(Debug)]
pub struct Counter<P> {
    received: u64,
    pending: Option<(u64, P)>,
    last_seq: HashMap<u32, u64>,
    disorder: u64,
}

impl<P> Default for Counter<P> {
    fn default() -> Self {
        Self {
            received: 0,
            pending: None,
            last_seq: HashMap::new(),
            disorder: 0,
        }
    }
}

impl<P> Counter<P> {
    /// Counts one cast; returns the pending drain's port and count if this
    /// cast completed it.
    pub fn count(&mut self) -> Option<(P, u64)> {
        self.received += 1;
        self.complete()
    }

    /// Counts a sequenced cast and checks it follows its sender's last one.
    pub fn sequenced(&mut self, sender: u32, seq: u64) -> Option<(P, u64)> {
        let last = self.last_seq.insert(sender, seq);
        if last.is_some_and(|last| seq <= last) {
            self.disorder += 1;
        }
        self.count()
    }

    /// Sequenced casts that arrived out of order.
    pub fn disorder(&self) -> u64 {
        self.disorder
    }

    /// Registers a drain; returns its port and count if already complete.
    pub fn drain(&mut self, expected: u64, port: P) -> Option<(P, u64)> {
        self.pending = Some((expected, port));
        self.complete()
    }

    /// Casts counted and not yet drained.
    pub fn received(&self) -> u64 {
        self.received
    }

    fn complete(&mut self) -> Option<(P, u64)> {
        let expected = self.pending.as_ref()?.0;
        if self.received < expected {
            return None;
        }
        let (_, port) = self.pending.take()?;
        self.received -= expected;
        Some((port, expected))
    }
}

#[cfg(test)]
mod tests {
    use bazaar_cluster::codec;
    use bazaar_cluster::remote::ServiceMsg;
    use ractor::Message;

    use super::*;

    #[test]
    fn a_drain_waits_for_its_count() {
        let mut counter = Counter::default();
        assert_eq!(counter.count(), None);
        assert_eq!(counter.drain(3, "port"), None);
        assert_eq!(counter.count(), None);
        assert_eq!(counter.count(), Some(("port", 3)));
        assert_eq!(counter.received(), 0);
        assert_eq!(counter.count(), None);
    }

    #[test]
    fn a_drain_of_what_already_arrived_is_answered_at_once() {
        let mut counter = Counter::default();
        for _ in 0..5 {
            counter.count();
        }
        assert_eq!(counter.drain(4, 1), Some((1, 4)));
        assert_eq!(counter.received(), 1);
        assert_eq!(counter.drain(0, 2), Some((2, 0)));
    }

    #[test]
    fn sequenced_casts_out_of_order_are_counted() {
        let mut counter = Counter::<()>::default();
        counter.sequenced(1, 1);
        counter.sequenced(2, 1);
        counter.sequenced(1, 2);
        assert_eq!(counter.disorder(), 0);
        counter.sequenced(1, 2);
        counter.sequenced(2, 0);
        assert_eq!(counter.disorder(), 2);
        assert_eq!(counter.received(), 5);
    }

    #[test]
    fn a_new_drain_replaces_a_pending_one() {
        let mut counter = Counter::default();
        assert_eq!(counter.drain(2, 1), None);
        assert_eq!(counter.drain(1, 2), None);
        assert_eq!(counter.count(), Some((2, 1)));
    }

    #[test]
    fn payloads_cross_the_bazaar_codec_as_one_byte_string() {
        let request = BenchRequest::Payload(Payload(vec![7; 1000]));
        let bytes = codec::encode_tagged(BenchProtocol::NAME, &request).unwrap();
        assert!(bytes.len() < 1000 + 32, "encoded in {} bytes", bytes.len());
        let decoded: BenchRequest = codec::decode_tagged(BenchProtocol::NAME, &bytes).unwrap();
        assert_eq!(decoded, request);
        assert_eq!(format!("{:?}", Payload(vec![0; 16])), "Payload(<16 bytes>)");
        let message = ServiceMsg::<BenchProtocol>::Cast(request.clone());
        let wire = message.serialize().unwrap();
        match ServiceMsg::<BenchProtocol>::deserialize(wire).unwrap() {
            ServiceMsg::Cast(decoded) => assert_eq!(decoded, request),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn raw_messages_cross_the_wire() {
        let wire = RawMsg::Cast(vec![1, 2, 3]).serialize().unwrap();
        match RawMsg::deserialize(wire).unwrap() {
            RawMsg::Cast(bytes) => assert_eq!(bytes, [1, 2, 3]),
            _ => panic!("expected a cast"),
        }
    }
}
