//! `bazaar demo`: the kill-a-node story, told with numbers.
//!
//! It starts a local cluster with `bazaar up` (or attaches to one), drives
//! shoppers and readers through every gateway, SIGKILLs the node that owns
//! checkout, lets `up` restart it, and reports what a user of the shop
//! saw: time to detect, time to fail over, the longest gap without an
//! acknowledged order, failed requests, time to rejoin, and a final check
//! that every acknowledged order is in the shop exactly once.

mod cluster;
mod load;
mod report;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::cli::DemoArgs;
use crate::gateway::ClusterReport;
use crate::launcher::observer::{checkout_owner, poll_all};
use cluster::{addr, DemoCluster};
use load::{Load, LoadPlan};
use report::{ms, DemoReport, Timeline};

/// Longest wait for the cluster to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for detection, failover and rejoin after the kill.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two polls.
const POLL: Duration = Duration::from_millis(10);
/// Products the shoppers buy (one each), with stock raised for the demo.
const DEMO_PRODUCTS: [u64; 3] = [4242, 4243, 4244];
/// Stock given to each demo product.
const DEMO_STOCK: u32 = 1_000_000;

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(demo(&args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!();
        print!("{}", report.render());
    }
    if !report.all_clear {
        bail!("the demo's final check failed");
    }
    Ok(())
}

async fn demo(args: &DemoArgs) -> anyhow::Result<DemoReport> {
    let start = Instant::now();
    let timeline = Timeline::new(start, args.json);
    let mut cluster = if args.attach {
        let cluster = DemoCluster::attach(&args.data_dir)?;
        timeline.say(format!(
            "attaching to the {} nodes of {} ({})",
            cluster.gateways.len(),
            args.data_dir.display(),
            cluster.gateways.join(", ")
        ));
        cluster
    } else {
        timeline.say(format!(
            "starting {} nodes with bazaar up (data in {})",
            args.nodes,
            args.data_dir.display()
        ));
        DemoCluster::start(
            args.nodes,
            &args.data_dir,
            args.http_port,
            args.cluster_port,
        )?
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    wait_ready(&client, &mut cluster).await?;
    let addrs: Vec<String> = cluster.gateways.iter().map(|g| addr(g)).collect();
    let (owner, old_epoch) =
        checkout_owner(&poll_all(&client, &addrs).await).context("no checkout owner")?;
    timeline.say(format!(
        "cluster ready: every gateway answers, checkout owner {owner} (epoch {old_epoch})"
    ));

    let buyers = prepare(&client, &cluster).await?;
    let killed_gateway = Arc::new(Mutex::new(None));
    let load = Load::start(LoadPlan {
        gateways: cluster.gateways.clone(),
        buyers,
        killed: killed_gateway.clone(),
        epoch: start,
    })?;
    timeline.say(format!(
        "load running: {} shoppers and {} readers across every gateway",
        cluster.gateways.len(),
        cluster.gateways.len()
    ));
    tokio::time::sleep(Duration::from_secs_f64(args.load_secs)).await;

    let index = owner.trim_start_matches('n').parse::<usize>().unwrap_or(1);
    let gateway = cluster.gateways[index - 1].clone();
    *killed_gateway.lock() = Some(gateway.clone());
    let killed_at = start.elapsed();
    let killed_at_ms = bazaar_cluster::membership::table::unix_ms_now();
    let pid = cluster.kill(&owner)?;
    timeline.say(format!("SIGKILL {owner} (pid {pid}), the checkout owner"));
    let survivors: Vec<String> = cluster
        .gateways
        .iter()
        .filter(|g| **g != gateway)
        .cloned()
        .collect();
    let survivor_addrs: Vec<String> = survivors.iter().map(|g| addr(g)).collect();

    let mut detect = None;
    let mut failover = None;
    let mut first_ack = None;
    let mut rejoin = None;
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    while Instant::now() < deadline && rejoin.is_none() {
        // One round of the survivors' views serves detection and failover.
        let reports = poll_all(&client, &survivor_addrs).await;
        if detect.is_none() {
            // The survivor's own record of when it saw the node go.
            let seen_down = reports.iter().flatten().find_map(|report| {
                let member = report.members.iter().find(|m| m.name == owner)?;
                (member.state == "down").then_some(member.since_ms)
            });
            if let Some(since_ms) = seen_down {
                let since_kill = Duration::from_millis(since_ms.saturating_sub(killed_at_ms));
                detect = Some(since_kill);
                timeline.say(format!(
                    "{owner} seen down by its peers, {} ms after the kill",
                    ms(since_kill)
                ));
            }
        }
        if failover.is_none() {
            if let Some((new_owner, epoch)) = checkout_owner(&reports) {
                if epoch > old_epoch && new_owner != owner {
                    // The earliest a survivor knew of the new owner, by its
                    // own clock (the new owner: when it became active).
                    let known_ms = reports
                        .iter()
                        .flatten()
                        .filter_map(|report| report.checkout.as_ref())
                        .map(|checkout| &checkout.status)
                        .filter(|c| {
                            c.owner.as_deref() == Some(new_owner.as_str()) && c.epoch == epoch
                        })
                        .map(|c| c.since_ms)
                        .filter(|since| *since > 0)
                        .min();
                    let since_kill = match known_ms {
                        Some(since) => Duration::from_millis(since.saturating_sub(killed_at_ms)),
                        None => start.elapsed() - killed_at,
                    };
                    failover = Some((new_owner.clone(), epoch, since_kill));
                    timeline.say(format!(
                        "checkout owner {new_owner} (epoch {epoch}), {} ms after the kill",
                        ms(since_kill)
                    ));
                }
            }
        }
        if first_ack.is_none() {
            let ack = load
                .tally
                .acks
                .lock()
                .iter()
                .find(|ack| ack.at > killed_at)
                .cloned();
            if let Some(ack) = ack {
                first_ack = Some(ack.at - killed_at);
                timeline.say(format!(
                    "first order acknowledged after the kill: {} (epoch {}), {} ms after it",
                    ack.order_id,
                    ack.epoch,
                    ms(ack.at - killed_at)
                ));
            }
        }
        if let Some((new_owner, _, _)) = &failover {
            let restarted = poll_all(&client, &[addr(&gateway)]).await;
            let follows = restarted[0]
                .as_ref()
                .and_then(|report: &ClusterReport| report.checkout.as_ref())
                .is_some_and(|c| c.status.owner.as_deref() == Some(new_owner.as_str()));
            let ready = client
                .get(format!("{gateway}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if follows && ready {
                rejoin = Some(start.elapsed() - killed_at);
                timeline.say(format!(
                    "{owner} restarted, rejoined and follows {new_owner}, {} ms after the kill",
                    ms(start.elapsed() - killed_at)
                ));
            }
        }
        tokio::time::sleep(POLL).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tally = load.stop().await;
    timeline.say("load stopped; checking every acknowledged order against the shop");

    let acks = tally.acks.lock().clone();
    let (lost, duplicated) = audit(&client, &cluster, &survivors, &acks).await?;
    let mut times: Vec<Duration> = acks.iter().map(|ack| ack.at).collect();
    times.sort();
    let max_gap = times
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or_default();
    let report = DemoReport {
        nodes: cluster.gateways.len(),
        killed: owner,
        old_epoch,
        new_owner: failover.as_ref().map(|(o, _, _)| o.clone()),
        new_epoch: failover.as_ref().map(|(_, e, _)| *e),
        detect_ms: detect.map(ms),
        failover_ms: failover.as_ref().map(|(_, _, at)| ms(*at)),
        first_ack_after_kill_ms: first_ack.map(ms),
        max_ack_gap_ms: ms(max_gap),
        rejoin_ms: rejoin.map(ms),
        orders_before: acks.iter().filter(|ack| ack.at <= killed_at).count(),
        orders_after: acks.iter().filter(|ack| ack.at > killed_at).count(),
        order_retries: tally
            .order_retries
            .load(std::sync::atomic::Ordering::Relaxed),
        reads_ok: tally.reads_ok.load(std::sync::atomic::Ordering::Relaxed),
        reads_failed: tally
            .reads_failed
            .load(std::sync::atomic::Ordering::Relaxed),
        reads_failed_on_killed_node: tally
            .reads_failed_on_killed
            .load(std::sync::atomic::Ordering::Relaxed),
        lost_orders: lost,
        duplicate_orders: duplicated,
        all_clear: lost == 0 && duplicated == 0 && failover.is_some() && rejoin.is_some(),
    };
    if !args.attach && !args.keep {
        timeline.say("stopping the cluster");
        cluster.stop();
    }
    Ok(report)
}

async fn wait_ready(client: &reqwest::Client, cluster: &mut DemoCluster) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(exit) = cluster.up_exited() {
            bail!("{exit}");
        }
        let mut ready = 0;
        for gateway in &cluster.gateways {
            if client
                .get(format!("{gateway}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                ready += 1;
            }
        }
        if ready == cluster.gateways.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the cluster was not ready within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs `username` in through `gateway`; returns the token.
async fn login(
    client: &reqwest::Client,
    gateway: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let url = format!("{gateway}/api/login");
    let response = client
        .post(&url)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{url} answered {status}: {answer}");
    }
    Ok(answer["token"]
        .as_str()
        .with_context(|| format!("no token for {username}"))?
        .to_string())
}

/// Logs the shoppers in and gives their products plenty of stock.
async fn prepare(
    client: &reqwest::Client,
    cluster: &DemoCluster,
) -> anyhow::Result<Vec<(String, String, u64)>> {
    let gateway = &cluster.gateways[0];
    let admin = login(client, gateway, "admin", &cluster.admin_password()?).await?;
    let mut buyers = Vec::new();
    for (index, product) in DEMO_PRODUCTS
        .iter()
        .take(cluster.gateways.len().max(1))
        .enumerate()
    {
        let response = client
            .put(format!("{gateway}/api/admin/products/{product}"))
            .bearer_auth(&admin)
            .json(&json!({ "stock": DEMO_STOCK }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "cannot set the stock of product {product}: {}",
                response.status()
            );
        }
        let user = format!("user{:03}", 91 + index);
        let token = login(client, gateway, &user, "bazaar").await?;
        buyers.push((user, token, *product));
    }
    Ok(buyers)
}

/// Compares acknowledged orders with the shop's: (lost, duplicated).
async fn audit(
    client: &reqwest::Client,
    cluster: &DemoCluster,
    survivors: &[String],
    acks: &[load::Ack],
) -> anyhow::Result<(usize, usize)> {
    let gateway = &survivors[0];
    let admin = login(client, gateway, "admin", &cluster.admin_password()?).await?;
    // The orders list of a node may trail the owner by a heartbeat: poll
    // until every acknowledged key is there, or a few seconds passed.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let orders: Value = client
            .get(format!("{gateway}/api/admin/orders"))
            .bearer_auth(&admin)
            .send()
            .await?
            .json()
            .await?;
        let mut per_key: HashMap<(String, String), usize> = HashMap::new();
        for order in orders["items"].as_array().into_iter().flatten() {
            let user = order["user"].as_str().unwrap_or_default().to_string();
            let key = order["idempotency_key"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            *per_key.entry((user, key)).or_default() += 1;
        }
        let lost = acks
            .iter()
            .filter(|ack| !per_key.contains_key(&(ack.user.clone(), ack.key.clone())))
            .count();
        let duplicated = per_key.values().filter(|count| **count > 1).count();
        if lost == 0 || Instant::now() > deadline {
            return Ok((lost, duplicated));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
