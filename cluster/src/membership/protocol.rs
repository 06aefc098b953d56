//! The membership protocol: what nodes tell each other about themselves.

use serde::{Deserialize, Serialize};

use crate::codec::WireMessage;
use crate::member::MemberInfo;

/// pg group joined by every node's membership inbox.
pub const MEMBERSHIP_GROUP: &str = "bazaar.membership";

/// A heartbeat, sent to every peer every heartbeat interval.
///
/// It doubles as gossip: `peers` lists the cluster addresses of the members
/// the sender sees up, so a node that knows one seed finds the whole mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The sender, as it describes itself.
    pub from: MemberInfo,
    /// Cluster addresses of the members the sender sees up.
    pub peers: Vec<String>,
}

impl WireMessage for Heartbeat {
    const PROTOCOL: &'static str = "bazaar.membership.heartbeat.v1";
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use ractor::BytesConvertable;

    use super::*;
    use crate::codec::{decode, encode, Wire};

    fn heartbeat() -> impl Strategy<Value = Heartbeat> {
        (
            "[a-z0-9]{1,8}",
            any::<u32>(),
            any::<u64>(),
            prop::collection::vec("[0-9.:]{1,21}", 0..8),
        )
            .prop_map(|(name, pid, incarnation, peers)| Heartbeat {
                from: MemberInfo {
                    name,
                    cluster_addr: "127.0.0.1:7071".into(),
                    http_addr: "127.0.0.1:8081".into(),
                    pid,
                    incarnation,
                },
                peers,
            })
    }

    proptest! {
        #[test]
        fn heartbeats_round_trip(value in heartbeat()) {
            let bytes = encode(&value).unwrap();
            prop_assert_eq!(decode::<Heartbeat>(&bytes).unwrap(), value.clone());
            let wire = Wire::<Heartbeat>::from_bytes(Wire::Value(value.clone()).into_bytes());
            prop_assert_eq!(wire.into_result().unwrap(), value);
        }

        /// The stable counterpart of the `membership` fuzz target.
        #[test]
        fn hostile_heartbeats_are_errors_not_panics(
            bytes in prop::collection::vec(any::<u8>(), 0..512),
        ) {
            let _ = decode::<Heartbeat>(&bytes);
            let _ = Wire::<Heartbeat>::from_bytes(bytes).into_result();
        }

        #[test]
        fn mutated_heartbeats_are_errors_not_panics(
            value in heartbeat(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = encode(&value).unwrap();
            for (at, byte) in flips {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            let _ = decode::<Heartbeat>(&bytes);
            let cut = cut.index(bytes.len() + 1);
            let _ = Wire::<Heartbeat>::from_bytes(bytes[..cut].to_vec()).into_result();
        }
    }
}
