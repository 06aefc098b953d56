//! Lane entries on arbitrary bytes, as an inbound lane reads them: length
//! prefixes through `body_len` (which must refuse anything over the
//! limit), bodies through `parse`. Both must return, never panic, and a
//! parsed entry's payload must lie within its body.
#![no_main]

use bazaar_cluster::lane::frame::{body_len, parse, Entry, LEN_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Some((prefix, tail)) = rest.split_first_chunk::<LEN_BYTES>() {
        let Ok(len) = body_len(*prefix) else {
            break;
        };
        let body = &tail[..len.min(tail.len())];
        if let Ok(entry) = parse(body) {
            let payload = match entry {
                Entry::Cast { payload, .. }
                | Entry::Call { payload, .. }
                | Entry::Reply { payload, .. } => payload,
            };
            assert!(payload.len() <= body.len());
        }
        rest = &tail[body.len()..];
    }
    let _ = parse(data);
});
