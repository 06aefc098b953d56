//! Tree reports of nested supervisors.

use super::*;

#[tokio::test]
async fn get_tree_reports_a_nested_tree_with_ids_kinds_strategies_and_counters() {
    let log = journal();
    let catalog = spec(
        "catalog",
        Strategy::RestForOne,
        vec![echo("catalog-store", &log), echo("catalog-workers", &log)],
    );
    let root = spec(
        "node-root",
        Strategy::OneForOne,
        vec![ChildSpec::nested(catalog), echo("auth", &log)],
    );
    let (root, _) = spawn_supervisor(root, None).await.unwrap();
    let catalog = ActorRef::<SupervisorMsg>::from(child(&root, "catalog").await);
    let store = child(&catalog, "catalog-store").await;
    let workers = child(&catalog, "catalog-workers").await;
    let auth = child(&root, "auth").await;

    let before = tree(&root).await;
    let leaf = |name: &str, id: &ActorCell| TreeReport {
        name: name.into(),
        actor_id: id.get_id().to_string(),
        kind: "worker".into(),
        strategy: None,
        restarts: 0,
        failures: 0,
        status: "running".into(),
        children: vec![],
    };
    let expected = TreeReport {
        name: "node-root".into(),
        actor_id: root.get_id().to_string(),
        kind: "supervisor".into(),
        strategy: Some("one_for_one".into()),
        restarts: 0,
        failures: 0,
        status: "running".into(),
        children: vec![
            TreeReport {
                name: "catalog".into(),
                actor_id: catalog.get_id().to_string(),
                kind: "supervisor".into(),
                strategy: Some("rest_for_one".into()),
                restarts: 0,
                failures: 0,
                status: "running".into(),
                children: vec![
                    leaf("catalog-store", &store),
                    leaf("catalog-workers", &workers),
                ],
            },
            leaf("auth", &auth),
        ],
    };
    assert_eq!(before, expected);
    let json = serde_json::to_string(&before).unwrap();
    assert_eq!(serde_json::from_str::<TreeReport>(&json).unwrap(), expected);

    crash(&store);
    restarted(&catalog, "catalog-workers", &workers).await;
    let after = tree(&root).await;
    let counters = |name: &str| (node(&after, name).restarts, node(&after, name).failures);
    assert_eq!(counters("catalog-store"), (1, 1));
    assert_eq!(counters("catalog-workers"), (1, 0));
    assert_eq!(counters("catalog"), (0, 0));
    assert_eq!(counters("auth"), (0, 0));
    root.stop_and_wait(None, Some(DEADLINE)).await.unwrap();
}
