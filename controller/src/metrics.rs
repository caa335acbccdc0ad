//! The controller's Prometheus metrics, registered under `bgpintent_controller_`.
//!
//! Labels are bounded: failure reasons are a fixed set, object kinds are our three, and
//! `policy` is the number of BGPPolicy objects (a handful in any cluster).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    pub policy: String,
}

/// Every metric the controller exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Reconcile passes (recompute, materialize, write).
    pub reconcile_runs: Counter,
    /// Failed writes (apply, delete, status, annotate) by reason; a pass with failures is
    /// retried.
    pub reconcile_failures: Family<ReasonLabel, Counter>,
    /// Seconds per pass.
    pub reconcile_duration: Histogram,
    /// Objects written (created or changed) by kind.
    pub objects_written: Family<KindLabel, Counter>,
    /// Objects deleted by kind.
    pub objects_deleted: Family<KindLabel, Counter>,
    /// 1 while this replica holds the Lease.
    pub leader: Gauge,
    /// BGPNodeIntents per policy after the last pass.
    pub intents: Family<PolicyLabel, Gauge>,
}

impl Metrics {
    /// Registers the metrics in `registry` (the binary gives it the `bgpintent` prefix).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            reconcile_runs: Counter::default(),
            reconcile_failures: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            objects_written: Family::default(),
            objects_deleted: Family::default(),
            leader: Gauge::default(),
            intents: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("controller");
        r.register("reconcile_runs", "Reconcile passes", m.reconcile_runs.clone());
        r.register(
            "reconcile_failures",
            "Failed writes of reconcile passes, by reason",
            m.reconcile_failures.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Duration of reconcile passes",
            m.reconcile_duration.clone(),
        );
        r.register(
            "objects_written",
            "Objects created or changed, by kind",
            m.objects_written.clone(),
        );
        r.register(
            "objects_deleted",
            "Objects deleted, by kind",
            m.objects_deleted.clone(),
        );
        r.register("leader", "1 while this replica is the leader", m.leader.clone());
        r.register("intents", "BGPNodeIntents per policy", m.intents.clone());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exposed names are what docs/metrics.md lists (counters get `_total`).
    #[test]
    fn exposed_names() {
        let mut registry = Registry::with_prefix("bgpintent");
        let m = Metrics::register(&mut registry);
        m.reconcile_runs.inc();
        m.leader.set(1);
        m.reconcile_failures
            .get_or_create(&ReasonLabel { reason: "apply" })
            .inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for name in [
            "bgpintent_controller_reconcile_runs_total 1",
            "bgpintent_controller_reconcile_failures_total{reason=\"apply\"} 1",
            "bgpintent_controller_reconcile_duration_seconds",
            "bgpintent_controller_leader 1",
        ] {
            assert!(text.contains(name), "{name} missing in:\n{text}");
        }
    }
}
