use proptest::prelude::*;

use super::*;
use crate::trace::TraceContext;

fn split(buf: &[u8]) -> Vec<&[u8]> {
    let mut bodies = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let (prefix, tail) = rest.split_first_chunk::<LEN_BYTES>().unwrap();
        let len = body_len(*prefix).unwrap();
        bodies.push(&tail[..len]);
        rest = &tail[len..];
    }
    bodies
}

fn ok(payload: &[u8]) -> impl FnOnce(&mut Vec<u8>) -> Result<(), ()> + '_ {
    move |buf| {
        buf.extend_from_slice(payload);
        Ok(())
    }
}

proptest! {
    #[test]
    fn entries_round_trip_in_order(
        pid in any::<u64>(),
        id in any::<u64>(),
        timeout_ms in any::<u32>(),
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        traced in any::<bool>(),
        trace_id in any::<u128>(),
        sampled in any::<bool>(),
    ) {
        let trace = traced.then_some(TraceContext { trace_id, span_id: id, sampled });
        let mut buf = Vec::new();
        push_cast(&mut buf, pid, trace, ok(&payload)).unwrap();
        push_call(&mut buf, pid, id, timeout_ms, trace, ok(&payload)).unwrap();
        push_reply(&mut buf, id, Status::Dropped, &payload);
        let bodies = split(&buf);
        prop_assert_eq!(bodies.len(), 3);
        prop_assert_eq!(parse(bodies[0]).unwrap(), Entry::Cast { pid, trace, payload: &payload });
        prop_assert_eq!(
            parse(bodies[1]).unwrap(),
            Entry::Call { pid, trace, id, timeout_ms, payload: &payload }
        );
        prop_assert_eq!(
            parse(bodies[2]).unwrap(),
            Entry::Reply { id, status: Status::Dropped, payload: &payload }
        );
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse(&body);
    }

    #[test]
    fn every_length_prefix_is_bounded(prefix in any::<[u8; 4]>()) {
        match body_len(prefix) {
            Ok(len) => prop_assert!(len <= MAX_BODY),
            Err(FrameError::TooLarge(len)) => prop_assert!(len > MAX_BODY),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}

#[test]
fn a_failed_payload_leaves_nothing_behind() {
    let mut buf = Vec::new();
    push_cast(&mut buf, 1, None, ok(b"kept")).unwrap();
    let before = buf.clone();
    assert_eq!(push_call(&mut buf, 2, 3, 4, None, |_| Err("no")), Err("no"));
    assert_eq!(buf, before);
}

#[test]
fn truncated_headers_and_unknown_bytes_are_errors() {
    assert_eq!(parse(&[]), Err(FrameError::Truncated { kind: 0, len: 0 }));
    assert!(matches!(
        parse(&[0x02, 1, 2, 3]),
        Err(FrameError::Truncated { kind: 0x02, .. })
    ));
    assert_eq!(parse(&[0x09]), Err(FrameError::UnknownKind(0x09)));
    let mut reply = vec![0x03];
    reply.extend_from_slice(&7u64.to_le_bytes());
    reply.push(0x77);
    assert_eq!(parse(&reply), Err(FrameError::UnknownStatus(0x77)));
    // A traced reply is not a thing; a traced kind needs its 24 bytes.
    reply[0] = 0x83;
    assert!(parse(&reply).is_err());
    assert!(matches!(
        parse(&[0x81, 1, 2]),
        Err(FrameError::Truncated { kind: 0x81, .. })
    ));
    assert!(body_len((MAX_BODY as u32 + 1).to_le_bytes()).is_err());
}
