//! Restart budgets: escalation past the budget, none when restarts are spread out.

use super::*;

#[tokio::test]
async fn crash_loop_exhausts_the_budget_and_fails_upward_with_a_clear_reason() {
    let log = journal();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (probe, _) = Actor::spawn(None, Probe, seen.clone()).await.unwrap();
    let spec = spec(
        "catalog",
        Strategy::OneForOne,
        vec![echo("catalog-store", &log)],
    );
    let (sup, handle) = spawn_supervisor(spec, Some(probe.get_cell()))
        .await
        .unwrap();

    let mut store = child(&sup, "catalog-store").await;
    for _ in 0..3 {
        crash(&store);
        store = restarted(&sup, "catalog-store", &store).await;
    }
    crash(&store);

    tokio::time::timeout(DEADLINE, handle)
        .await
        .unwrap()
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        ["failed: restart budget exhausted: 4 restarts in 5s for child catalog-store"]
    );
    assert_eq!(
        entries(&log),
        ["start catalog-store"; 4],
        "no restart after the 4th crash"
    );
    probe.stop(None);
}

#[tokio::test]
async fn a_parent_supervisor_restarts_a_child_supervisor_that_escalated() {
    let log = journal();
    let inner = spec(
        "catalog",
        Strategy::OneForOne,
        vec![echo("catalog-store", &log)],
    );
    let root = spec(
        "node-root",
        Strategy::OneForOne,
        vec![ChildSpec::nested(inner)],
    );
    let (root, _) = spawn_supervisor(root, None).await.unwrap();
    let catalog = child(&root, "catalog").await;
    let catalog_ref = ActorRef::<SupervisorMsg>::from(catalog.clone());

    let mut store = child(&catalog_ref, "catalog-store").await;
    for _ in 0..3 {
        crash(&store);
        store = restarted(&catalog_ref, "catalog-store", &store).await;
    }
    crash(&store);
    let new_catalog = restarted(&root, "catalog", &catalog).await;

    let report = tree(&root).await;
    let rc = node(&report, "catalog");
    assert_eq!(
        (rc.restarts, rc.failures, rc.status.as_str()),
        (1, 1, "running")
    );
    assert_eq!(rc.actor_id, new_catalog.get_id().to_string());
    let rs = node(&report, "catalog-store");
    assert_eq!(
        (rs.restarts, rs.failures),
        (0, 0),
        "fresh supervisor, fresh counters"
    );
    let new_store = child(&ActorRef::from(new_catalog), "catalog-store").await;
    assert_eq!(ping(&new_store).await.as_deref(), Some("catalog-store"));
    root.stop_and_wait(None, Some(DEADLINE)).await.unwrap();
}

#[tokio::test]
async fn restarts_spread_wider_than_the_window_do_not_escalate() {
    let log = journal();
    let budget = RestartBudget::new(1, Duration::from_millis(200));
    let spec = spec("shop", Strategy::OneForOne, vec![echo("a", &log)]).with_budget(budget);
    let (sup, _) = spawn_supervisor(spec, None).await.unwrap();

    let mut a = child(&sup, "a").await;
    for _ in 0..4 {
        // Part of the scenario, not a wait for a condition: let the window pass.
        tokio::time::sleep(Duration::from_millis(300)).await;
        crash(&a);
        a = restarted(&sup, "a", &a).await;
    }

    let report = tree(&sup).await;
    assert_eq!(
        (report.children[0].restarts, report.children[0].failures),
        (4, 4)
    );
    assert_eq!(sup.get_status(), ractor::ActorStatus::Running);
    sup.stop(None);
}

#[tokio::test]
async fn restarts_within_the_window_escalate() {
    let log = journal();
    let budget = RestartBudget::new(1, Duration::from_secs(60));
    let spec = spec("shop", Strategy::OneForOne, vec![echo("a", &log)]).with_budget(budget);
    let (sup, handle) = spawn_supervisor(spec, None).await.unwrap();

    let a = child(&sup, "a").await;
    crash(&a);
    let a = restarted(&sup, "a", &a).await;
    crash(&a);

    tokio::time::timeout(DEADLINE, handle)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sup.get_status(), ractor::ActorStatus::Stopped);
}
