use ractor::Message;
use serde::{Deserialize, Serialize};

use super::*;

struct Echo;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum EchoRequest {
    Say(String),
}

impl Protocol for Echo {
    const NAME: &'static str = "bazaar.test.echo.v1";
    type Request = EchoRequest;
    type Reply = String;
}

struct Other;

impl Protocol for Other {
    const NAME: &'static str = "bazaar.test.other.v1";
    type Request = u32;
    type Reply = u32;
}

#[test]
fn a_cast_survives_the_wire() {
    let message = ServiceMsg::<Echo>::Cast(EchoRequest::Say("hi".into()));
    let wire = message.serialize().unwrap();
    match ServiceMsg::<Echo>::deserialize(wire).unwrap() {
        ServiceMsg::Cast(EchoRequest::Say(text)) => assert_eq!(text, "hi"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_call_is_answered_across_the_wire() {
    let (tx, rx) = ractor::concurrency::oneshot::<Reply<Echo>>();
    let port = RpcReplyPort::from((tx, Duration::from_secs(1)));
    let wire = ServiceMsg::<Echo>::Call(EchoRequest::Say("ping".into()), port)
        .serialize()
        .unwrap();
    let ServiceMsg::Call(EchoRequest::Say(text), reply) =
        ServiceMsg::<Echo>::deserialize(wire).unwrap()
    else {
        panic!("expected a call");
    };
    reply.send(Ok(format!("{text} pong"))).unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(1), rx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer, Ok("ping pong".to_string()));
}

#[tokio::test]
async fn a_call_of_another_protocol_is_refused_with_an_answer() {
    let (tx, rx) = ractor::concurrency::oneshot::<Reply<Other>>();
    let port = RpcReplyPort::from((tx, Duration::from_secs(1)));
    let SerializedMessage::Call {
        variant,
        args,
        reply,
        metadata,
    } = ServiceMsg::<Other>::Call(7, port).serialize().unwrap()
    else {
        panic!("expected a call");
    };
    // The frame reaches an Echo actor: it must not be misread.
    let misdelivered = SerializedMessage::Call {
        variant,
        args,
        reply,
        metadata,
    };
    assert!(matches!(
        ServiceMsg::<Echo>::deserialize(misdelivered).unwrap(),
        ServiceMsg::Malformed(CodecError::WrongProtocol { .. })
    ));
    // The refusal is encoded for Echo's reply tag, which the Other caller
    // cannot read either: it still gets an error, never a wrong value.
    let answer = tokio::time::timeout(Duration::from_secs(1), rx)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(answer, Err(RemoteError::Malformed(_))));
}

#[test]
fn garbage_casts_become_malformed() {
    let wire = SerializedMessage::Cast {
        variant: CAST.to_string(),
        args: vec![0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        metadata: None,
    };
    assert!(matches!(
        ServiceMsg::<Echo>::deserialize(wire).unwrap(),
        ServiceMsg::Malformed(_)
    ));
    let unknown = SerializedMessage::Cast {
        variant: "other".to_string(),
        args: vec![],
        metadata: None,
    };
    assert!(matches!(
        ServiceMsg::<Echo>::deserialize(unknown).unwrap(),
        ServiceMsg::Malformed(_)
    ));
}
