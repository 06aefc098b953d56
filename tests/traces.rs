//! One trace through the cluster: a checkout sent to one gateway with a W3C
//! `traceparent` shows up, with the same trace id, in the log of the node
//! that owns checkout — another process, reached through a lane and then
//! through the owner's own actors.

mod support;

use std::time::{Duration, Instant};

use support::{stocked_products, TestCluster, DEMO_PASSWORD};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const LOG_TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn a_checkout_carries_its_trace_id_to_the_owner_node() {
    let cluster = TestCluster::start(3);
    cluster.expect_within(Instant::now(), READY_TIMEOUT, "all up and ready", |c| {
        c.all_up(&[1, 2, 3]) && c.all_ready(&[1, 2, 3])
    });
    let mut agreed = None;
    cluster.expect_within(Instant::now(), READY_TIMEOUT, "one checkout owner", |c| {
        agreed = c.agreed_owner(&[1, 2, 3]);
        agreed.is_some()
    });
    let (owner_name, _) = agreed.unwrap();
    let owner = cluster.index_of(&owner_name).unwrap();
    let gateway = if owner == 1 { 2 } else { 1 };

    let token = cluster.login(gateway, "user007", DEMO_PASSWORD);
    let product = &stocked_products(&cluster, 1)[0];
    let (status, cart) = cluster
        .add_to_cart(gateway, &token, product.id, 1, None)
        .expect("the gateway answers a cart change");
    assert_eq!(status, 200, "{cart}");

    let trace_id = format!("{:032x}", rand::random::<u128>() | 1);
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let response = reqwest::blocking::Client::new()
        .post(format!(
            "http://{}/api/checkout",
            cluster.http_addr(gateway)
        ))
        .bearer_auth(&token)
        .header("idempotency-key", "traced-1")
        .header("traceparent", &traceparent)
        .timeout(Duration::from_secs(15))
        .send()
        .expect("the gateway answers the checkout");
    assert_eq!(response.status().as_u16(), 201, "a new order");
    let echoed = response
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        echoed.starts_with(&format!("00-{trace_id}-")) && echoed != traceparent,
        "the response names the request's own span in the caller's trace: {echoed:?}"
    );

    let took = cluster.expect_within(
        Instant::now(),
        LOG_TIMEOUT,
        "the owner logs the order inside the caller's trace",
        |c| {
            c.log(owner)
                .lines()
                .any(|line| line.contains(&trace_id) && line.contains("order confirmed"))
        },
    );
    let line = cluster
        .log(owner)
        .lines()
        .find(|line| line.contains(&trace_id))
        .unwrap()
        .to_string();
    println!("gateway n{gateway}, owner n{owner}, seen after {took:?}: {line}");
}
