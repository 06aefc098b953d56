//! Multi-process cluster tests: real `bazaar node` processes on loopback,
//! started, killed, frozen and restarted through [`support::TestCluster`].
//!
//! What they hold the node to (see `DESIGN.md`, "Cluster layer"):
//! - nodes given each other as seeds form a full mesh and report quorum;
//! - a killed peer is declared down in well under a second (TCP close), a
//!   frozen one within about two seconds (heartbeats), and both come back
//!   by themselves;
//! - a wrong cookie never makes a member, and the intruder is told why;
//! - quorum follows `--expect`, and readiness follows quorum;
//! - seeds that come up late are still joined.
//!
//! Timings are printed (`cargo test --test cluster -- --nocapture`). The
//! tests serialize themselves through the cluster's global lock.

mod support;

use std::time::{Duration, Instant};

use support::{Options, TestCluster};

/// Time a fresh cluster gets to become fully up.
const FORM_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a 3-node cluster and waits until it is fully up.
fn formed_cluster() -> TestCluster {
    let cluster = TestCluster::start(3);
    let took = cluster.expect_within(Instant::now(), FORM_TIMEOUT, "3 nodes all up", |c| {
        c.all_up(&[1, 2, 3])
    });
    println!("cluster formed in {took:?}");
    cluster
}

#[test]
fn three_nodes_form_a_cluster_and_are_ready() {
    let cluster = TestCluster::start(3);
    let took = cluster.expect_within(
        Instant::now(),
        FORM_TIMEOUT,
        "every node lists n1, n2, n3 up",
        |c| c.all_up(&[1, 2, 3]),
    );
    println!("3 nodes all up after {took:?}");
    let took = cluster.expect_within(Instant::now(), FORM_TIMEOUT, "every node ready", |c| {
        c.all()
            .into_iter()
            .all(|i| c.status(i, "/readyz") == Some(200))
    });
    println!("3 nodes ready after {took:?} more");

    for i in cluster.all() {
        assert_eq!(cluster.status(i, "/healthz"), Some(200), "n{i} /healthz");

        let view = cluster.cluster_view(i).expect("view of a running node");
        assert_eq!(view.node, cluster.name(i), "n{i} names itself");
        assert_eq!(view.members.len(), 3, "n{i} lists 3 members: {view:?}");
        for j in cluster.all() {
            let member = view
                .member(&cluster.name(j))
                .unwrap_or_else(|| panic!("n{i} does not list n{j}: {view:?}"));
            assert_eq!(member.cluster_addr, cluster.cluster_addr(j).to_string());
            assert_eq!(member.http_addr, cluster.http_addr(j).to_string());
            assert_eq!(Some(member.pid), cluster.pid(j), "pid of n{j} seen by n{i}");
        }

        let pid_file = std::fs::read_to_string(cluster.data_dir(i).join("pid"))
            .unwrap_or_else(|e| panic!("n{i} pid file: {e}"));
        assert_eq!(
            pid_file.trim().parse::<u32>().ok(),
            cluster.pid(i),
            "n{i} pid file"
        );
    }
}

#[test]
fn killed_node_is_down_within_one_second() {
    let mut cluster = formed_cluster();

    let killed_at = Instant::now();
    cluster.kill(3);
    let took = cluster.expect_within(
        killed_at,
        Duration::from_secs(1),
        "n1 and n2 report the killed n3 down",
        |c| c.all_report(&[1, 2], 3, "down"),
    );
    println!("SIGKILL detected by n1 and n2 after {took:?}");
}

#[test]
fn frozen_node_is_down_then_up_again_after_resume() {
    let cluster = formed_cluster();

    let stopped_at = Instant::now();
    cluster.stop(3);
    let down_after = cluster.expect_within(
        stopped_at,
        Duration::from_secs(3),
        "n1 and n2 report the frozen n3 down",
        |c| c.all_report(&[1, 2], 3, "down"),
    );
    println!("SIGSTOP detected by n1 and n2 after {down_after:?}");

    let resumed_at = Instant::now();
    cluster.cont(3);
    let up_after = cluster.expect_within(
        resumed_at,
        Duration::from_secs(3),
        "all three report each other up after SIGCONT",
        |c| c.all_up(&[1, 2, 3]),
    );
    println!("after SIGCONT all up again in {up_after:?}");
}

#[test]
fn restarted_node_rejoins_by_itself() {
    let mut cluster = formed_cluster();
    let old_incarnation = cluster
        .cluster_view(1)
        .and_then(|v| v.member("n2").map(|m| m.incarnation))
        .expect("n1 lists n2");

    cluster.kill(2);
    cluster.expect_within(
        Instant::now(),
        Duration::from_secs(3),
        "n1 and n3 report the killed n2 down",
        |c| c.all_report(&[1, 3], 2, "down"),
    );

    let restarted_at = Instant::now();
    cluster.restart(2);
    let new_pid = cluster.pid(2).expect("restarted n2 runs");
    let took = cluster.expect_within(
        restarted_at,
        Duration::from_secs(5),
        "the new n2 is up everywhere",
        |c| {
            c.all_up(&[1, 2, 3])
                && [1, 3].iter().all(|&o| {
                    c.cluster_view(o)
                        .and_then(|v| v.member("n2").map(|m| m.pid))
                        == Some(new_pid)
                })
        },
    );
    println!("restarted n2 up everywhere after {took:?}");

    for o in [1, 3] {
        let member = cluster
            .cluster_view(o)
            .and_then(|v| v.member("n2").cloned())
            .expect("n2 listed");
        assert!(
            member.incarnation > old_incarnation,
            "n{o} sees n2 incarnation {} after restart, was {old_incarnation}",
            member.incarnation
        );
    }
}

#[test]
fn wrong_cookie_never_becomes_a_member() {
    let mut cluster = TestCluster::start_with(4, Options::default().wrong_cookie(4).deferred(4));
    cluster.expect_within(Instant::now(), FORM_TIMEOUT, "n1..n3 all up", |c| {
        c.all_up(&[1, 2, 3])
    });

    let started_at = Instant::now();
    cluster.start_node(4);

    // Observe: no member ever lists n4, and n4 never sees a member up.
    // Meanwhile note when n4 first logs the rejection.
    let mut rejected_after = None;
    let admitted = cluster.wait_until(Duration::from_secs(3), |c| {
        if rejected_after.is_none() && c.log(4).contains("cookie rejected") {
            rejected_after = Some(started_at.elapsed());
        }
        let listed_by_member = [1, 2, 3]
            .iter()
            .any(|&o| c.cluster_view(o).is_some_and(|v| v.member("n4").is_some()));
        let sees_members_up = c
            .cluster_view(4)
            .is_some_and(|v| v.up_names().iter().any(|name| name != "n4"));
        listed_by_member || sees_members_up
    });
    assert!(
        admitted.is_none(),
        "n4 with a wrong cookie was admitted after {admitted:?}:\n{}",
        cluster.describe()
    );
    assert!(
        cluster.all_up(&[1, 2, 3]),
        "members unaffected by the intruder:\n{}",
        cluster.describe()
    );

    let rejected_after = rejected_after.unwrap_or_else(|| {
        cluster.expect_within(
            started_at,
            Duration::from_secs(5),
            "the intruder n4 logs \"cookie rejected\"",
            |c| c.log(4).contains("cookie rejected"),
        )
    });
    println!("n4 logged \"cookie rejected\" within {rejected_after:?} of its start");
}

#[test]
fn lone_node_short_of_quorum_is_not_ready() {
    let cluster = TestCluster::start_with(1, Options::default().expect(3));
    cluster.expect_within(
        Instant::now(),
        Duration::from_secs(5),
        "n1 serves /healthz",
        |c| c.status(1, "/healthz") == Some(200),
    );

    // Observe for a while: it must never claim a quorum it cannot have.
    let wrong = cluster.wait_until(Duration::from_secs(1), |c| {
        let quorum = c.cluster_view(1).map(|v| v.quorum);
        quorum != Some(false) || c.status(1, "/readyz") != Some(503)
    });
    assert!(
        wrong.is_none(),
        "a lone node with --expect 3 must report quorum false and /readyz 503:\n{}",
        cluster.describe()
    );
}

#[test]
fn single_node_cluster_with_expect_one_is_ready() {
    let cluster = TestCluster::start_with(1, Options::default().expect(1));
    let took = cluster.expect_within(
        Instant::now(),
        Duration::from_secs(5),
        "n1 alone with --expect 1 has quorum and is ready",
        |c| c.all_up(&[1]) && c.status(1, "/readyz") == Some(200),
    );
    println!("single node ready after {took:?}");
}

#[test]
fn node_started_before_its_seeds_joins_them() {
    let mut cluster = TestCluster::start_with(3, Options::default().deferred(2).deferred(3));
    cluster.expect_within(
        Instant::now(),
        Duration::from_secs(5),
        "n1 serves /healthz",
        |c| c.status(1, "/healthz") == Some(200),
    );
    // Let n1 fail its first dials to the absent seeds, and check it does
    // not consider itself joined meanwhile.
    let joined_alone = cluster.wait_until(Duration::from_millis(1500), |c| {
        c.status(1, "/readyz") != Some(503)
    });
    assert!(
        joined_alone.is_none(),
        "n1 ready without its seeds:\n{}",
        cluster.describe()
    );

    let started_at = Instant::now();
    cluster.start_node(2);
    cluster.start_node(3);
    let took = cluster.expect_within(started_at, FORM_TIMEOUT, "n1 joins its late seeds", |c| {
        c.all_up(&[1, 2, 3])
    });
    println!("late seeds joined after {took:?}");
    // Ready also needs its services and a checkout owner: a moment more.
    cluster.expect_within(Instant::now(), Duration::from_secs(5), "n1 ready", |c| {
        c.status(1, "/readyz") == Some(200)
    });
}

#[test]
fn sigterm_exits_cleanly() {
    let mut cluster = formed_cluster();
    let status = cluster
        .terminate(3, Duration::from_secs(5))
        .expect("n3 exits within 5 s of SIGTERM");
    assert!(status.success(), "n3 exit status after SIGTERM: {status}");
    assert!(
        !cluster.data_dir(3).join("pid").exists(),
        "n3 removes its pid file on a clean exit"
    );
    cluster.expect_within(
        Instant::now(),
        Duration::from_secs(3),
        "n1 and n2 report the terminated n3 down",
        |c| c.all_report(&[1, 2], 3, "down"),
    );
}
