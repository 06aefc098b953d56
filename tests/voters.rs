//! Checkout's voter set from the operator's side, with real processes: a
//! 4-node cluster whose voters are n1..n3 shows n4 as a learner; readiness
//! counts the voters (losing the learner costs nothing, losing two voters
//! of three makes a node unready); `POST /api/admin/voters` checks its
//! input and its caller; and `bazaar voters add|remove` (the real binary)
//! grows and shrinks the set through checkout's log.
//!
//! The last two tests need checkout to implement voter changes (issue 12):
//! until it does, every change answers 503 "not implemented yet".

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{http_get, Options, TestCluster};

const BIN: &str = env!("CARGO_BIN_EXE_bazaar");
/// Time a fresh cluster gets to form, place every service and elect an owner.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time every node gets to show a committed voter change.
const SPREAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a node gets to see a killed peer down and say so.
const DOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Four nodes, voters n1..n3 (n4 a learner), all ready.
fn four_nodes_three_voters() -> TestCluster {
    let cluster = TestCluster::start_with(4, Options::default().voters(&[1, 2, 3]));
    let took = cluster.expect_within(
        Instant::now(),
        READY_TIMEOUT,
        "n1..n4 all up and /readyz 200",
        |c| c.all_up(&[1, 2, 3, 4]) && c.all_ready(&[1, 2, 3, 4]),
    );
    println!("4 nodes ready after {took:?}");
    cluster
}

/// Node `i`'s `(voters, learners)` from `/api/cluster`.
fn voters_seen_by(cluster: &TestCluster, i: usize) -> Option<(Vec<String>, Vec<String>)> {
    let view = cluster.checkout_view(i)?;
    Some((view.voters, view.learners))
}

/// Whether every node in `nodes` shows exactly `voters` and `learners`.
fn all_show(cluster: &TestCluster, nodes: &[usize], voters: &[&str], learners: &[&str]) -> bool {
    nodes
        .iter()
        .all(|&i| voters_seen_by(cluster, i).is_some_and(|(v, l)| v == voters && l == learners))
}

/// `POST /api/admin/voters` on node `i`: `(status, JSON body)`.
fn change(cluster: &TestCluster, i: usize, body: &Value, token: Option<&str>) -> (u16, Value) {
    cluster.post_json(i, "/api/admin/voters", body, token)
}

/// Runs `bazaar voters ARGS` with `BAZAAR_ADMIN_PASSWORD` set to
/// `password` (unset if `None`) and no other admin password around.
fn bazaar_voters(args: &[&str], password: Option<&str>, cwd: &Path) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("voters")
        .args(args)
        .current_dir(cwd)
        .env_remove("BAZAAR_ADMIN_PASSWORD");
    if let Some(password) = password {
        command.env("BAZAAR_ADMIN_PASSWORD", password);
    }
    command.output().expect("run bazaar voters")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_cluster_report_shows_voters_and_learners_and_changes_are_checked() {
    let cluster = four_nodes_three_voters();
    cluster.expect_within(
        Instant::now(),
        SPREAD_TIMEOUT,
        "every node shows voters n1..n3 and learner n4",
        |c| all_show(c, &[1, 2, 3, 4], &["n1", "n2", "n3"], &["n4"]),
    );

    let admin = cluster.admin_token(1);
    let user = cluster.login(1, "user001", support::DEMO_PASSWORD);
    let add_n4 = json!({ "add": "n4" });
    // Who may ask: an admin, and nobody else.
    assert_eq!(change(&cluster, 1, &add_n4, None).0, 401, "no token");
    assert_eq!(
        change(&cluster, 1, &add_n4, Some("not-a-token")).0,
        401,
        "a wrong token"
    );
    assert_eq!(change(&cluster, 1, &add_n4, Some(&user)).0, 403, "a user");
    // What may be asked: exactly one valid node name.
    for (body, what) in [
        (json!({ "add": "n4", "remove": "n2" }), "both fields"),
        (json!({}), "no field"),
        (json!({ "promote": "n4" }), "an unknown field"),
        (json!({ "add": 4 }), "a number"),
        (json!({ "add": "" }), "an empty name"),
        (json!({ "remove": "n 2" }), "a name with a space"),
    ] {
        let (status, answer) = change(&cluster, 1, &body, Some(&admin));
        assert_eq!(status, 422, "{what} ({body}): {answer}");
        assert!(
            answer["error"].is_string(),
            "{what}: a JSON error: {answer}"
        );
    }
    // A voter must be a running member: a typo is refused before checkout.
    let (status, answer) = change(&cluster, 2, &json!({ "add": "n9" }), Some(&admin));
    assert_eq!(status, 409, "adding a node that is not a member: {answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("n9 is not a reachable member")),
        "{answer}"
    );
    // Not JSON at all.
    let (status, _) = http_post_raw(&cluster, 1, "add n4", &admin);
    assert_eq!(status, 400, "a body that is not JSON");

    // The command line: the same refusals, a clear message, a non-zero exit.
    let dir = tempfile::tempdir().expect("temporary directory");
    let at = format!("http://{}", cluster.http_addr(3));
    let refused = bazaar_voters(
        &["add", "n9", "--at", &at],
        Some(cluster.admin_password()),
        dir.path(),
    );
    assert!(!refused.status.success(), "add n9 exits non-zero");
    assert!(
        stderr(&refused).contains("refused, n9 not changed")
            && stderr(&refused).contains("not a reachable member"),
        "add n9: {}",
        stderr(&refused)
    );
    let wrong = bazaar_voters(&["add", "n4", "--at", &at], Some("wrong"), dir.path());
    assert!(!wrong.status.success(), "a wrong password exits non-zero");
    assert!(
        stderr(&wrong).contains("wrong admin password"),
        "{}",
        stderr(&wrong)
    );
    let none = bazaar_voters(&["add", "n4", "--at", &at], None, dir.path());
    assert!(!none.status.success(), "no password exits non-zero");
    assert!(
        stderr(&none).contains("no admin password"),
        "{}",
        stderr(&none)
    );
    // --data-dir: the password file `bazaar up` writes, before the environment.
    std::fs::write(dir.path().join("admin-password"), "wrong\n").expect("write password file");
    let dir_arg = dir.path().to_str().expect("utf-8 temp path");
    let from_file = bazaar_voters(
        &["remove", "n2", "--at", &at, "--data-dir", dir_arg],
        Some(cluster.admin_password()),
        dir.path(),
    );
    assert!(
        stderr(&from_file).contains("wrong admin password"),
        "--data-dir wins over the environment: {}",
        stderr(&from_file)
    );
    let unreachable = bazaar_voters(
        &["add", "n4", "--at", "http://127.0.0.1:9"],
        Some("any"),
        dir.path(),
    );
    assert!(!unreachable.status.success());
    assert!(
        stderr(&unreachable).contains("cannot reach"),
        "{}",
        stderr(&unreachable)
    );
    // Nothing changed.
    assert!(all_show(
        &cluster,
        &[1, 2, 3, 4],
        &["n1", "n2", "n3"],
        &["n4"]
    ));
}

/// `POST /api/admin/voters` with a raw, non-JSON body.
fn http_post_raw(cluster: &TestCluster, i: usize, body: &str, token: &str) -> (u16, String) {
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{}/api/admin/voters", cluster.http_addr(i)))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(support::WRITE_TIMEOUT)
        .send()
        .expect("the gateway answers");
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

#[test]
fn readiness_counts_voters_not_nodes() {
    let mut cluster = four_nodes_three_voters();
    // Losing the learner costs nothing.
    cluster.kill(4);
    cluster.expect_within(Instant::now(), DOWN_TIMEOUT, "n1..n3 see n4 down", |c| {
        c.all_report(&[1, 2, 3], 4, "down")
    });
    let unready = cluster.wait_until(Duration::from_secs(1), |c| !c.all_ready(&[1, 2, 3]));
    assert!(
        unready.is_none(),
        "the voters stay ready without the learner:\n{}",
        cluster.describe()
    );
    // Two voters of three gone: no majority of the voters, not ready,
    // however the membership quorum was latched.
    cluster.kill(2);
    cluster.kill(3);
    let took = cluster.expect_within(
        Instant::now(),
        DOWN_TIMEOUT,
        "n1 answers /readyz 503 for want of voters",
        |c| {
            http_get(c.http_addr(1), "/readyz").is_some_and(|(status, body)| {
                status == 503 && body.contains("majority of the checkout voters")
            })
        },
    );
    println!("n1 unready {took:?} after losing two voters of three");
}

/// Needs checkout's voter changes (issue 12).
#[test]
fn voters_add_and_remove_through_the_command_line() {
    let cluster = four_nodes_three_voters();
    let dir = tempfile::tempdir().expect("temporary directory");
    let password = Some(cluster.admin_password());
    // Ask a learner: it forwards to the owner like any checkout request.
    let at = format!("http://{}", cluster.http_addr(4));

    let added = bazaar_voters(&["add", "n4", "--at", &at], password, dir.path());
    assert!(added.status.success(), "add n4: {}", stderr(&added));
    assert!(
        stdout(&added).contains("checkout voters: n1, n2, n3, n4"),
        "add n4 prints the new set: {}",
        stdout(&added)
    );
    let took = cluster.expect_within(
        Instant::now(),
        SPREAD_TIMEOUT,
        "every node shows voters n1..n4 and no learner",
        |c| all_show(c, &[1, 2, 3, 4], &["n1", "n2", "n3", "n4"], &[]),
    );
    println!("add n4 seen everywhere {took:?} after it was committed");

    // The same change again makes no sense: refused, and said so.
    let again = bazaar_voters(&["add", "n4", "--at", &at], password, dir.path());
    assert!(!again.status.success(), "a second add n4 exits non-zero");
    assert!(
        stderr(&again).contains("refused"),
        "a second add n4: {}",
        stderr(&again)
    );
    let admin = cluster.admin_token(1);
    let (status, answer) = change(&cluster, 1, &json!({ "add": "n4" }), Some(&admin));
    assert_eq!(status, 409, "adding a voter: {answer}");

    let removed = bazaar_voters(&["remove", "n4", "--at", &at], password, dir.path());
    assert!(removed.status.success(), "remove n4: {}", stderr(&removed));
    assert!(
        stdout(&removed).contains("checkout voters: n1, n2, n3"),
        "remove n4 prints the new set: {}",
        stdout(&removed)
    );
    cluster.expect_within(
        Instant::now(),
        SPREAD_TIMEOUT,
        "every node shows voters n1..n3 and learner n4 again",
        |c| all_show(c, &[1, 2, 3, 4], &["n1", "n2", "n3"], &["n4"]),
    );
    let (status, answer) = change(&cluster, 2, &json!({ "remove": "n4" }), Some(&admin));
    assert_eq!(status, 409, "removing a learner: {answer}");
}

/// Needs checkout's voter changes (issue 12): the operator's way out of a
/// dead voter is to remove it and add a live node.
#[test]
fn a_dead_voter_is_replaced_by_a_learner() {
    let mut cluster = four_nodes_three_voters();
    let admin = cluster.admin_token(1);
    cluster.kill(3);
    cluster.expect_within(Instant::now(), DOWN_TIMEOUT, "n1 sees n3 down", |c| {
        c.all_report(&[1, 2, 4], 3, "down")
    });
    let (status, answer) = change(&cluster, 1, &json!({ "remove": "n3" }), Some(&admin));
    assert_eq!(status, 200, "remove the dead voter n3: {answer}");
    assert_eq!(answer["voters"], json!(["n1", "n2"]), "{answer}");
    let (status, answer) = change(&cluster, 4, &json!({ "add": "n4" }), Some(&admin));
    assert_eq!(status, 200, "add the learner n4: {answer}");
    assert_eq!(answer["voters"], json!(["n1", "n2", "n4"]), "{answer}");
    cluster.expect_within(
        Instant::now(),
        SPREAD_TIMEOUT,
        "n1, n2, n4 show voters n1, n2, n4 and no learner",
        |c| all_show(c, &[1, 2, 4], &["n1", "n2", "n4"], &[]),
    );
    // n2 may go too now: n1 and n4 are a majority of the new set.
    cluster.kill(2);
    cluster.expect_within(
        Instant::now(),
        READY_TIMEOUT,
        "n1 and n4 ready with two voters of three",
        |c| c.all_report(&[1, 4], 2, "down") && c.all_ready(&[1, 4]),
    );
}
