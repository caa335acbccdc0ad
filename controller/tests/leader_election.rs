//! Leader election against the fake API server over real HTTP.

use std::time::Duration;

use bgpintent_controller::lease::{LeaderElector, LeaseConfig};
use fake_apiserver::FakeApiServer;
use tokio::{sync::watch, task::JoinHandle, time::Instant};

fn config(identity: &str) -> LeaseConfig {
    LeaseConfig {
        name: "bgp-intent-controller".into(),
        namespace: "kube-system".into(),
        identity: identity.into(),
        // The Lease stores whole seconds.
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1000),
        retry_period: Duration::from_millis(200),
    }
}

struct Candidate {
    leader: watch::Receiver<bool>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

fn spawn(server: &FakeApiServer, identity: &str) -> Candidate {
    let elector = LeaderElector::new(server.client(), config(identity));
    let leader = elector.subscribe();
    let shutdown = watch::channel(false).0;
    let task = tokio::spawn(elector.run(shutdown.subscribe()));
    Candidate {
        leader,
        shutdown,
        task,
    }
}

fn leaders(candidates: &[&Candidate]) -> usize {
    candidates.iter().filter(|c| *c.leader.borrow()).count()
}

async fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

fn holder(server: &FakeApiServer) -> (String, i64) {
    let lease = server
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            "kube-system",
            "bgp-intent-controller",
        )
        .unwrap();
    (
        lease["spec"]["holderIdentity"].as_str().unwrap_or("").to_owned(),
        lease["spec"]["leaseTransitions"].as_i64().unwrap_or(0),
    )
}

#[tokio::test]
async fn exactly_one_of_three_leads_and_a_crashed_leader_is_replaced_within_the_lease_duration() {
    let server = FakeApiServer::start().await;
    let candidates = [
        spawn(&server, "pod-0"),
        spawn(&server, "pod-1"),
        spawn(&server, "pod-2"),
    ];
    let all: Vec<&Candidate> = candidates.iter().collect();
    wait_for("a leader", Duration::from_secs(3), || leaders(&all) == 1).await;
    // Stays at exactly one over many renewals.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(leaders(&all), 1);
    }
    let first = candidates.iter().position(|c| *c.leader.borrow()).unwrap();
    assert_eq!(holder(&server).0, format!("pod-{first}"));

    // Crash: the task is killed without releasing the lease.
    candidates[first].task.abort();
    let others: Vec<&Candidate> = candidates
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != first)
        .map(|(_, c)| c)
        .collect();
    let took = wait_for("a new leader", Duration::from_secs(5), || leaders(&others) == 1).await;
    // The observed-time rule: the lease duration after the followers last saw a renewal
    // (which was at most two retry periods before the crash), and soon after that.
    assert!(
        took >= Duration::from_millis(2000 - 400),
        "took over after {took:?}, before the lease expired"
    );
    assert!(
        took <= Duration::from_millis(2000 + 1000),
        "took over only after {took:?}"
    );
    let (new_holder, transitions) = holder(&server);
    assert_ne!(new_holder, format!("pod-{first}"));
    assert_eq!(transitions, 1);
}

#[tokio::test]
async fn a_released_lease_is_taken_over_at_the_next_retry() {
    let server = FakeApiServer::start().await;
    let a = spawn(&server, "a");
    wait_for("a to lead", Duration::from_secs(3), || *a.leader.borrow()).await;
    let b = spawn(&server, "b");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!*b.leader.borrow());
    a.shutdown.send_replace(true);
    a.task.await.unwrap();
    let took = wait_for("b to lead", Duration::from_secs(3), || *b.leader.borrow()).await;
    assert!(
        took < Duration::from_millis(1000),
        "release should not wait for expiry: {took:?}"
    );
}

#[tokio::test]
async fn a_leader_cut_off_from_the_api_steps_down_within_the_renew_deadline() {
    let mut server = FakeApiServer::start().await;
    let a = spawn(&server, "a");
    wait_for("a to lead", Duration::from_secs(3), || *a.leader.borrow()).await;
    server.stop().await;
    let stepped = wait_for("a to step down", Duration::from_secs(3), || !*a.leader.borrow()).await;
    assert!(
        stepped <= Duration::from_millis(1000 + 300),
        "stepped down after {stepped:?}"
    );
    // It must step down before the lease can expire for others (2 s): no two leaders.
    assert!(stepped < Duration::from_millis(2000));
    server.restart().await;
    wait_for("a to lead again", Duration::from_secs(3), || *a.leader.borrow()).await;
}
