//! `codec::decode_tagged` on arbitrary bytes for every service protocol's
//! request and reply types: the first byte picks the type and whether the
//! right protocol tag is put in front (so that most inputs reach the type's
//! own decoder), the rest is the frame. Decoding must return, never panic
//! or allocate past the limit.
#![no_main]

use bazaar_actors::auth::protocol::AuthProtocol;
use bazaar_actors::cart::protocol::CartProtocol;
use bazaar_actors::catalog::protocol::{CatalogFeedProtocol, CatalogProtocol};
use bazaar_actors::checkout::payment::PaymentProtocol;
use bazaar_actors::checkout::protocol::CheckoutProtocol;
use bazaar_actors::host::protocol::HostProtocol;
use bazaar_actors::search::protocol::SearchProtocol;
use bazaar_cluster::codec::{decode_tagged, encode_tagged};
use bazaar_cluster::remote::{Protocol, Reply};
use libfuzzer_sys::fuzz_target;

fn decode<P: Protocol>(reply: bool, tagged: bool, bytes: &[u8]) {
    let tag = if reply {
        format!("{}.reply", P::NAME)
    } else {
        P::NAME.to_string()
    };
    let mut frame = Vec::new();
    if tagged {
        frame = encode_tagged(&tag, &()).expect("a tag encodes");
    }
    frame.extend_from_slice(bytes);
    if reply {
        let _ = decode_tagged::<Reply<P>>(&tag, &frame);
    } else {
        let _ = decode_tagged::<P::Request>(&tag, &frame);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let reply = selector & 1 == 1;
    let tagged = selector & 2 == 2;
    match (selector >> 2) % 8 {
        0 => decode::<CatalogProtocol>(reply, tagged, bytes),
        1 => decode::<CatalogFeedProtocol>(reply, tagged, bytes),
        2 => decode::<AuthProtocol>(reply, tagged, bytes),
        3 => decode::<SearchProtocol>(reply, tagged, bytes),
        4 => decode::<CartProtocol>(reply, tagged, bytes),
        5 => decode::<CheckoutProtocol>(reply, tagged, bytes),
        6 => decode::<PaymentProtocol>(reply, tagged, bytes),
        _ => decode::<HostProtocol>(reply, tagged, bytes),
    }
});
