use proptest::prelude::*;
use ractor::BytesConvertable;
use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sample {
    name: String,
    ids: Vec<u64>,
    nested: Option<Vec<String>>,
    price_cents: i64,
}

impl WireMessage for Sample {
    const PROTOCOL: &'static str = "bazaar.test.sample.v1";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Other(u32);

impl WireMessage for Other {
    const PROTOCOL: &'static str = "bazaar.test.other.v1";
}

fn sample() -> impl Strategy<Value = Sample> {
    (
        ".{0,40}",
        prop::collection::vec(any::<u64>(), 0..50),
        prop::option::of(prop::collection::vec(".{0,10}", 0..10)),
        any::<i64>(),
    )
        .prop_map(|(name, ids, nested, price_cents)| Sample {
            name,
            ids,
            nested,
            price_cents,
        })
}

/// A bincode varint claiming `len` elements: 0xfd marks a u64 follows.
fn huge_length_prefix(len: u64) -> Vec<u8> {
    let mut bytes = vec![0xfd];
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes
}

proptest! {
    #[test]
    fn round_trips(value in sample()) {
        let bytes = encode(&value).unwrap();
        prop_assert_eq!(decode::<Sample>(&bytes).unwrap(), value.clone());
        let wire = Wire::<Sample>::from_bytes(Wire::Value(value.clone()).into_bytes());
        prop_assert_eq!(wire.into_result().unwrap(), value);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode::<Sample>(&bytes);
        let _ = Wire::<Sample>::from_bytes(bytes);
    }

    #[test]
    fn truncated_frames_are_errors(value in sample(), cut in 0usize..1000) {
        let bytes = encode(&value).unwrap();
        let cut = cut % bytes.len();
        prop_assert!(decode::<Sample>(&bytes[..cut]).is_err());
    }

    #[test]
    fn huge_length_prefixes_are_errors(len in (MAX_MESSAGE_BYTES as u64)..u64::MAX, tail in prop::collection::vec(any::<u8>(), 0..16)) {
        // As the protocol tag's length.
        let mut bytes = huge_length_prefix(len);
        bytes.extend_from_slice(&tail);
        prop_assert!(decode::<Sample>(&bytes).is_err());

        // As the length of a vector inside a correctly tagged frame.
        let mut bytes = encode(&Sample { name: String::new(), ids: vec![], nested: None, price_cents: 0 }).unwrap();
        let tag_len = Sample::PROTOCOL.len() + 1;
        bytes.truncate(tag_len + 1);
        bytes.extend_from_slice(&huge_length_prefix(len));
        bytes.extend_from_slice(&tail);
        prop_assert!(decode::<Sample>(&bytes).is_err());
    }

    #[test]
    fn flipped_bytes_never_panic(value in sample(), index in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = encode(&value).unwrap();
        let at = index.index(bytes.len());
        bytes[at] = byte;
        let _ = decode::<Sample>(&bytes);
    }
}

#[test]
fn fifteen_byte_hostile_payload_is_an_error() {
    let mut bytes = huge_length_prefix(u64::MAX / 2);
    bytes.extend_from_slice(&[0xff; 6]);
    assert_eq!(bytes.len(), 15);
    assert!(matches!(
        decode::<Sample>(&bytes),
        Err(CodecError::Malformed(_))
    ));
}

#[test]
fn another_protocol_is_refused() {
    let bytes = encode(&Other(7)).unwrap();
    assert!(matches!(
        decode::<Sample>(&bytes),
        Err(CodecError::WrongProtocol { .. })
    ));
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = encode(&Other(7)).unwrap();
    bytes.push(0);
    assert_eq!(decode::<Other>(&bytes), Err(CodecError::TrailingBytes(1)));
}

#[test]
fn oversized_values_are_refused_on_encode() {
    let big = Sample {
        name: String::new(),
        ids: vec![u64::MAX; MAX_MESSAGE_BYTES / 8 + 1],
        nested: None,
        price_cents: 0,
    };
    assert!(matches!(encode(&big), Err(CodecError::TooLarge { .. })));
}
