//! The membership protocol on arbitrary bytes: a heartbeat as the inbox
//! receives it (`Wire<Heartbeat>` through ractor's `BytesConvertable`) and
//! through `codec::decode`. Both must return, never panic.
#![no_main]

use bazaar_cluster::codec::{decode, Wire};
use bazaar_cluster::membership::Heartbeat;
use libfuzzer_sys::fuzz_target;
use ractor::BytesConvertable;

fuzz_target!(|data: &[u8]| {
    let _ = decode::<Heartbeat>(data);
    let _ = Wire::<Heartbeat>::from_bytes(data.to_vec()).into_result();
});
