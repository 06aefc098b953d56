use super::*;

fn info(name: &str, incarnation: u64) -> MemberInfo {
    MemberInfo {
        name: name.to_string(),
        cluster_addr: format!("{name}:7071"),
        http_addr: format!("{name}:8081"),
        pid: 1,
        incarnation,
    }
}

struct Clock {
    start: Instant,
}

impl Clock {
    fn at(&self, ms: u64) -> Moment {
        Moment {
            instant: self.start + Duration::from_millis(ms),
            unix_ms: 1_000_000 + ms,
        }
    }
}

fn setup(expected: usize) -> (MembershipTable, Clock) {
    let clock = Clock {
        start: Instant::now(),
    };
    let table = MembershipTable::new(
        info("n1", 1),
        expected,
        DetectorConfig::default(),
        clock.at(0),
    );
    (table, clock)
}

fn state(table: &MembershipTable, name: &str) -> Option<MemberState> {
    table.view().members.get(name).map(|member| member.state)
}

#[test]
fn alone_a_node_of_three_has_no_quorum() {
    let (table, _) = setup(3);
    assert!(!table.has_quorum());
    assert_eq!(state(&table, "n1"), Some(MemberState::Up));
    let (table, _) = setup(1);
    assert!(table.has_quorum());
}

#[test]
fn up_needs_a_ready_session_and_a_heartbeat_in_either_order() {
    let (mut table, clock) = setup(3);
    assert!(table.heartbeat(info("n2", 1), clock.at(10)).is_empty());
    assert_eq!(state(&table, "n2"), Some(MemberState::Down));
    let events = table.session_ready("n2", clock.at(20));
    assert_eq!(
        events,
        vec![
            MemberEvent::MemberUp(info("n2", 1)),
            MemberEvent::QuorumChanged(true)
        ]
    );

    table.session_ready("n3", clock.at(30));
    assert_eq!(state(&table, "n3"), None);
    let events = table.heartbeat(info("n3", 1), clock.at(40));
    assert_eq!(events, vec![MemberEvent::MemberUp(info("n3", 1))]);
    assert_eq!(table.view().up_count(), 3);
}

#[test]
fn session_close_is_down_at_once() {
    let (mut table, clock) = setup(3);
    table.session_ready("n2", clock.at(0));
    table.heartbeat(info("n2", 1), clock.at(0));
    let events = table.session_closed("n2", clock.at(5));
    assert_eq!(
        events,
        vec![
            MemberEvent::MemberDown {
                info: info("n2", 1),
                reason: DownReason::SessionClosed
            },
            MemberEvent::QuorumChanged(false)
        ]
    );
    assert_eq!(table.view().members["n2"].since_ms, 1_000_005);
}

#[test]
fn silence_is_suspect_then_down_with_a_disconnect() {
    let (mut table, clock) = setup(3);
    table.session_ready("n2", clock.at(0));
    table.heartbeat(info("n2", 1), clock.at(0));
    assert_eq!(table.tick(clock.at(500)), (vec![], vec![]));
    let (events, stop) = table.tick(clock.at(700));
    assert_eq!(events, vec![MemberEvent::MemberSuspected(info("n2", 1))]);
    assert!(stop.is_empty());
    // Still counted until it is down: suspicion is not a verdict.
    assert!(table.has_quorum());
    let (events, stop) = table.tick(clock.at(1600));
    assert_eq!(
        events,
        vec![
            MemberEvent::MemberDown {
                info: info("n2", 1),
                reason: DownReason::HeartbeatTimeout
            },
            MemberEvent::QuorumChanged(false)
        ]
    );
    assert_eq!(stop, vec!["n2".to_string()]);
    // The session close that follows changes nothing more.
    assert!(table.session_closed("n2", clock.at(1610)).is_empty());
    assert_eq!(table.tick(clock.at(5000)), (vec![], vec![]));
}

#[test]
fn a_late_heartbeat_lifts_suspicion() {
    let (mut table, clock) = setup(3);
    table.session_ready("n2", clock.at(0));
    table.heartbeat(info("n2", 1), clock.at(0));
    table.tick(clock.at(700));
    assert_eq!(state(&table, "n2"), Some(MemberState::Suspect));
    let events = table.heartbeat(info("n2", 1), clock.at(800));
    assert_eq!(events, vec![MemberEvent::MemberUp(info("n2", 1))]);
    // Silence is measured from the late heartbeat.
    assert_eq!(table.tick(clock.at(1300)), (vec![], vec![]));
}

#[test]
fn a_frozen_peer_that_resumes_comes_back() {
    let (mut table, clock) = setup(3);
    table.session_ready("n2", clock.at(0));
    table.heartbeat(info("n2", 1), clock.at(0));
    table.tick(clock.at(2000));
    assert_eq!(state(&table, "n2"), Some(MemberState::Down));
    table.session_closed("n2", clock.at(2001));
    table.session_ready("n2", clock.at(9000));
    assert_eq!(state(&table, "n2"), Some(MemberState::Down));
    let events = table.heartbeat(info("n2", 1), clock.at(9001));
    assert_eq!(
        events,
        vec![
            MemberEvent::MemberUp(info("n2", 1)),
            MemberEvent::QuorumChanged(true)
        ]
    );
}

#[test]
fn a_ready_session_that_never_heartbeats_is_stopped() {
    let (mut table, clock) = setup(3);
    table.session_ready("n9", clock.at(0));
    let (events, stop) = table.tick(clock.at(1600));
    assert!(events.is_empty());
    assert_eq!(stop, vec!["n9".to_string()]);
}

#[test]
fn incarnations_only_move_forward() {
    let (mut table, clock) = setup(3);
    table.session_ready("n2", clock.at(0));
    table.heartbeat(info("n2", 5), clock.at(0));
    assert!(table.heartbeat(info("n2", 4), clock.at(10)).is_empty());
    assert_eq!(table.view().members["n2"].info.incarnation, 5);
    let events = table.heartbeat(info("n2", 6), clock.at(20));
    assert_eq!(events, vec![MemberEvent::MemberUp(info("n2", 6))]);
    assert_eq!(table.view().members["n2"].since_ms, 1_000_020);
}

#[test]
fn own_heartbeat_is_ignored() {
    let (mut table, clock) = setup(1);
    assert!(table.heartbeat(info("n1", 9), clock.at(0)).is_empty());
    assert_eq!(table.view().members["n1"].info.incarnation, 1);
}
