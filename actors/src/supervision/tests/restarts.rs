//! Restarts per strategy, and supervisors that refuse to start.

use super::*;

#[tokio::test]
async fn one_for_one_restarts_a_crashed_child_with_a_new_id() {
    let log = journal();
    let spec = spec(
        "shop",
        Strategy::OneForOne,
        vec![echo("a", &log), echo("b", &log)],
    );
    let (sup, _) = spawn_supervisor(spec, None).await.unwrap();
    let a = child(&sup, "a").await;
    let b = child(&sup, "b").await;

    crash(&a);
    let new_a = restarted(&sup, "a", &a).await;

    assert_eq!(ping(&new_a).await.as_deref(), Some("a"));
    let report = tree(&sup).await;
    let (ra, rb) = (node(&report, "a"), node(&report, "b"));
    assert_eq!(
        (ra.restarts, ra.failures, ra.status.as_str()),
        (1, 1, "running")
    );
    assert_eq!(ra.actor_id, new_a.get_id().to_string());
    assert_eq!((rb.restarts, rb.failures), (0, 0));
    assert_eq!(rb.actor_id, b.get_id().to_string(), "sibling untouched");
    assert_eq!(entries(&log), ["start a", "start b", "start a"]);
    sup.stop_and_wait(None, Some(DEADLINE)).await.unwrap();
    assert_eq!(
        entries(&log)[3..],
        ["stop b", "stop a"],
        "stopped newest first"
    );
}

#[tokio::test]
async fn a_child_that_stops_on_its_own_is_restarted_without_a_failure() {
    let log = journal();
    let (sup, _) = spawn_supervisor(
        spec("shop", Strategy::OneForOne, vec![echo("a", &log)]),
        None,
    )
    .await
    .unwrap();
    let a = child(&sup, "a").await;

    a.stop(Some("done".into()));
    restarted(&sup, "a", &a).await;

    let report = tree(&sup).await;
    assert_eq!(
        (report.children[0].restarts, report.children[0].failures),
        (1, 0)
    );
    sup.stop(None);
}

#[tokio::test]
async fn one_for_all_restarts_every_sibling_in_order() {
    let log = journal();
    let children = vec![echo("a", &log), echo("b", &log), echo("c", &log)];
    let (sup, _) = spawn_supervisor(spec("shop", Strategy::OneForAll, children), None)
        .await
        .unwrap();
    let (a, b, c) = (
        child(&sup, "a").await,
        child(&sup, "b").await,
        child(&sup, "c").await,
    );

    ActorRef::<EchoMsg>::from(b.clone())
        .send_message(EchoMsg::Fail)
        .unwrap();
    restarted(&sup, "c", &c).await;

    let report = tree(&sup).await;
    for (name, old, failures) in [("a", &a, 0), ("b", &b, 1), ("c", &c, 0)] {
        let n = node(&report, name);
        assert_eq!((n.restarts, n.failures), (1, failures), "{name}");
        assert_ne!(n.actor_id, old.get_id().to_string(), "{name} got a new id");
    }
    let expected = [
        "start a", "start b", "start c", "stop c", "stop a", "start a", "start b", "start c",
    ];
    assert_eq!(entries(&log), expected);
    sup.stop(None);
}

#[tokio::test]
async fn rest_for_one_restarts_only_the_later_siblings() {
    let log = journal();
    let children = vec![echo("a", &log), echo("b", &log), echo("c", &log)];
    let (sup, _) = spawn_supervisor(spec("shop", Strategy::RestForOne, children), None)
        .await
        .unwrap();
    let (a, b, c) = (
        child(&sup, "a").await,
        child(&sup, "b").await,
        child(&sup, "c").await,
    );

    crash(&b);
    restarted(&sup, "c", &c).await;

    let report = tree(&sup).await;
    let ra = node(&report, "a");
    assert_eq!(
        (ra.restarts, ra.actor_id.clone()),
        (0, a.get_id().to_string())
    );
    for (name, old, failures) in [("b", &b, 1), ("c", &c, 0)] {
        let n = node(&report, name);
        assert_eq!((n.restarts, n.failures), (1, failures), "{name}");
        assert_ne!(n.actor_id, old.get_id().to_string(), "{name} got a new id");
    }
    let expected = [
        "start a", "start b", "start c", "stop c", "start b", "start c",
    ];
    assert_eq!(entries(&log), expected);
    sup.stop(None);
}

#[tokio::test]
async fn a_child_that_fails_to_start_fails_the_supervisor_and_stops_its_elders() {
    let log = journal();
    let broken = ChildSpec::worker("broken", |_sup| async {
        Err(ractor::SpawnErr::StartupFailed("no database".into()))
    });
    let spec = spec(
        "shop",
        Strategy::OneForOne,
        vec![echo("a", &log), broken, echo("c", &log)],
    );

    let err = spawn_supervisor(spec, None).await.unwrap_err();

    assert!(
        err.to_string().contains("child broken failed to start"),
        "{err}"
    );
    assert_eq!(entries(&log), ["start a", "stop a"]);
}

#[tokio::test]
async fn duplicate_child_names_are_refused() {
    let log = journal();
    let spec = spec(
        "shop",
        Strategy::OneForOne,
        vec![echo("a", &log), echo("a", &log)],
    );

    let err = spawn_supervisor(spec, None).await.unwrap_err();

    assert!(err.to_string().contains("duplicate child name a"), "{err}");
    assert!(entries(&log).is_empty());
}
