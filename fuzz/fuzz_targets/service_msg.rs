//! `ServiceMsg::deserialize`, the entry of every remote service message,
//! on arbitrary frames: the first byte picks the protocol and the variant
//! (cast, call or an unknown name), the rest is the payload. It must return
//! a message (`Malformed` for bad bytes), never panic.
#![no_main]

use std::sync::LazyLock;

use bazaar_actors::auth::protocol::AuthProtocol;
use bazaar_actors::cart::protocol::CartProtocol;
use bazaar_actors::catalog::protocol::{CatalogFeedProtocol, CatalogProtocol};
use bazaar_actors::checkout::payment::PaymentProtocol;
use bazaar_actors::checkout::protocol::CheckoutProtocol;
use bazaar_actors::host::protocol::HostProtocol;
use bazaar_actors::search::protocol::SearchProtocol;
use bazaar_cluster::remote::{Protocol, ServiceMsg};
use libfuzzer_sys::fuzz_target;
use ractor::message::SerializedMessage;
use ractor::Message;

/// A call's reply port is bridged by a task, so calls need a runtime.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
});

fn deliver<P: Protocol>(variant: u8, args: &[u8]) {
    let args = args.to_vec();
    let message = match variant % 3 {
        0 => SerializedMessage::Cast {
            variant: "cast".to_string(),
            args,
            metadata: None,
        },
        1 => {
            let (tx, _rx) = ractor::concurrency::oneshot::<Vec<u8>>();
            SerializedMessage::Call {
                variant: "call".to_string(),
                args,
                reply: tx.into(),
                metadata: None,
            }
        }
        _ => SerializedMessage::Cast {
            variant: String::from_utf8_lossy(&args).into_owned(),
            args,
            metadata: None,
        },
    };
    let _ = ServiceMsg::<P>::deserialize(message);
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, args)) = data.split_first() else {
        return;
    };
    let _runtime = RUNTIME.enter();
    let variant = selector / 8;
    match selector % 8 {
        0 => deliver::<CatalogProtocol>(variant, args),
        1 => deliver::<CatalogFeedProtocol>(variant, args),
        2 => deliver::<AuthProtocol>(variant, args),
        3 => deliver::<SearchProtocol>(variant, args),
        4 => deliver::<CartProtocol>(variant, args),
        5 => deliver::<CheckoutProtocol>(variant, args),
        6 => deliver::<PaymentProtocol>(variant, args),
        _ => deliver::<HostProtocol>(variant, args),
    }
});
