//! Every decoder that reads a service's network bytes, on hostile input:
//! the stable counterpart of the cargo-fuzz targets in `fuzz/`.
//!
//! For each service protocol: `codec::decode_tagged` of its request and
//! reply types on random bytes, and on random bytes behind the right
//! protocol tag (which reach the type's own decoder); `ServiceMsg::
//! deserialize` on random casts, calls and unknown variants. Nothing may
//! panic; a bad payload is an error or a `Malformed` message, and the two
//! entries agree on what is a valid request.

use bazaar_actors::auth::protocol::AuthProtocol;
use bazaar_actors::cart::protocol::CartProtocol;
use bazaar_actors::catalog::protocol::{CatalogFeedProtocol, CatalogProtocol};
use bazaar_actors::checkout::payment::PaymentProtocol;
use bazaar_actors::checkout::protocol::CheckoutProtocol;
use bazaar_actors::host::protocol::HostProtocol;
use bazaar_actors::search::protocol::SearchProtocol;
use bazaar_cluster::codec::{decode_tagged, encode_tagged, CodecError};
use bazaar_cluster::remote::{Protocol, Reply, ServiceMsg};
use proptest::prelude::*;
use ractor::message::SerializedMessage;
use ractor::Message;

/// `bytes` behind `tag`'s encoding, or alone.
fn frame(tag: &str, tagged: bool, bytes: &[u8]) -> Vec<u8> {
    let mut frame = if tagged {
        encode_tagged(tag, &()).expect("a tag encodes")
    } else {
        Vec::new()
    };
    frame.extend_from_slice(bytes);
    frame
}

fn decode_both<P: Protocol>(tagged: bool, bytes: &[u8]) {
    let reply_tag = format!("{}.reply", P::NAME);
    let _ = decode_tagged::<P::Request>(P::NAME, &frame(P::NAME, tagged, bytes));
    let _ = decode_tagged::<Reply<P>>(&reply_tag, &frame(&reply_tag, tagged, bytes));
}

fn decode_all(tagged: bool, bytes: &[u8]) {
    decode_both::<CatalogProtocol>(tagged, bytes);
    decode_both::<CatalogFeedProtocol>(tagged, bytes);
    decode_both::<AuthProtocol>(tagged, bytes);
    decode_both::<SearchProtocol>(tagged, bytes);
    decode_both::<CartProtocol>(tagged, bytes);
    decode_both::<CheckoutProtocol>(tagged, bytes);
    decode_both::<PaymentProtocol>(tagged, bytes);
    decode_both::<HostProtocol>(tagged, bytes);
}

/// Delivers `args` as a cast, a call and an unknown variant; each must
/// come out as a message, `Malformed` unless the bytes are a request.
fn deliver<P: Protocol>(args: &[u8]) {
    let cast = SerializedMessage::Cast {
        variant: "cast".to_string(),
        args: args.to_vec(),
        metadata: None,
    };
    let decoded = ServiceMsg::<P>::deserialize(cast).expect("a cast always yields a message");
    let valid = decode_tagged::<P::Request>(P::NAME, args).is_ok();
    assert_eq!(!matches!(decoded, ServiceMsg::Malformed(_)), valid);

    let (tx, _rx) = ractor::concurrency::oneshot::<Vec<u8>>();
    let call = SerializedMessage::Call {
        variant: "call".to_string(),
        args: args.to_vec(),
        reply: tx.into(),
        metadata: None,
    };
    let decoded = ServiceMsg::<P>::deserialize(call).expect("a call always yields a message");
    assert_eq!(!matches!(decoded, ServiceMsg::Malformed(_)), valid);

    let unknown = SerializedMessage::Cast {
        variant: String::from_utf8_lossy(args).into_owned(),
        args: args.to_vec(),
        metadata: None,
    };
    if let Ok(decoded) = ServiceMsg::<P>::deserialize(unknown) {
        let is_request = !matches!(decoded, ServiceMsg::Malformed(_));
        assert!(!is_request || valid);
    }
}

fn deliver_all(tagged: bool, bytes: &[u8]) {
    deliver::<CatalogProtocol>(&frame(CatalogProtocol::NAME, tagged, bytes));
    deliver::<CatalogFeedProtocol>(&frame(CatalogFeedProtocol::NAME, tagged, bytes));
    deliver::<AuthProtocol>(&frame(AuthProtocol::NAME, tagged, bytes));
    deliver::<SearchProtocol>(&frame(SearchProtocol::NAME, tagged, bytes));
    deliver::<CartProtocol>(&frame(CartProtocol::NAME, tagged, bytes));
    deliver::<CheckoutProtocol>(&frame(CheckoutProtocol::NAME, tagged, bytes));
    deliver::<PaymentProtocol>(&frame(PaymentProtocol::NAME, tagged, bytes));
    deliver::<HostProtocol>(&frame(HostProtocol::NAME, tagged, bytes));
}

/// A call's reply port is bridged by a task, so calls need a runtime.
static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn request_and_reply_decoders_never_panic(
        tagged in any::<bool>(),
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        decode_all(tagged, &bytes);
    }

    #[test]
    fn huge_length_prefixes_behind_a_tag_are_errors(
        marker in prop::sample::select(vec![0xfbu8, 0xfc, 0xfd, 0xfe]),
        len in any::<u64>(),
        tail in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        // a bincode varint that claims up to 2^64 elements or bytes
        let mut bytes = vec![marker];
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&tail);
        decode_all(true, &bytes);
    }

    #[test]
    fn service_msg_deserialize_never_panics(
        tagged in any::<bool>(),
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let _entered = RUNTIME.enter();
        deliver_all(tagged, &bytes);
    }
}

#[test]
fn oversized_frames_are_refused_before_decoding() {
    let bytes = vec![0u8; bazaar_cluster::codec::MAX_MESSAGE_BYTES + 1];
    let err =
        decode_tagged::<<CatalogProtocol as Protocol>::Request>(CatalogProtocol::NAME, &bytes)
            .unwrap_err();
    assert!(matches!(err, CodecError::TooLarge { .. }), "{err:?}");
}
