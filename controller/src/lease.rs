//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's rules.
//!
//! ```text
//!   every retry period:  GET lease ──▶ decide() ──▶ Create | Renew | TakeOver ──▶ PUT with
//!                                        │                                    resourceVersion
//!                                        └─▶ Follow(holder)                   (409 = lost)
//!   leader? ──▶ watch::Sender<bool> ──▶ the applier writes only while it reads `true`
//! ```
//!
//! * **Observed-time rule**: another holder's lease is considered expired only when its
//!   `(holderIdentity, renewTime)` has not changed for `leaseDuration` *on our own monotonic
//!   clock*, so no clock is ever compared across machines.
//! * **Fencing**: every write is a replace carrying the `resourceVersion` we read; if anyone
//!   wrote in between, the apiserver answers 409 and we did not get (or keep) the lease.
//!   kube-lease-manager 0.13 renews with patches without that precondition, which is why this
//!   is our own ~200 lines (shared/reference/k8s-tooling.md §2).
//! * **Stepping down**: a leader that has not renewed successfully within `renewDeadline`
//!   (shorter than `leaseDuration`) stops leading *before* anyone else can take over, so two
//!   leaders never write at once as long as both monotonic clocks run at similar rates.
//! * **Release**: on shutdown the leader clears the holder, so a standby takes over at its next
//!   retry instead of after a full lease duration.
//!
//! The decision is the pure function [`decide`]; [`LeaderElector::run`] does the I/O.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{Api, api::PostParams};
use tokio::{sync::watch, time::Instant};

/// Timing and identity of one candidate.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// This replica's identity (the Pod name).
    pub identity: String,
    /// How long a holder's lease is valid after its last renewal (client-go default 15 s).
    pub lease_duration: Duration,
    /// A leader that could not renew for this long steps down (default 10 s).
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew (default 2 s).
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// client-go's constraints: renewDeadline < leaseDuration and retryPeriod < renewDeadline.
    pub fn validate(&self) -> Result<(), String> {
        if self.renew_deadline >= self.lease_duration {
            return Err("--renew-deadline must be shorter than --lease-duration".into());
        }
        if self.retry_period >= self.renew_deadline {
            return Err("--retry-period must be shorter than --renew-deadline".into());
        }
        if self.identity.is_empty() {
            return Err("--identity must not be empty".into());
        }
        Ok(())
    }
}

/// What we last saw of someone else's lease, and when (on our clock).
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    holder: String,
    renew_time: Option<String>,
    at: Instant,
}

/// What to do with the lease as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No lease object: create it with us as holder.
    Create,
    /// We hold it: renew.
    Renew,
    /// Free or expired: take it over (a new transition).
    TakeOver,
    /// Someone else holds a live lease.
    Follow { holder: String },
}

/// The pure decision. `observed` is updated when the other holder's record changed.
pub fn decide(now: Instant, lease: Option<&Lease>, me: &str, observed: &mut Option<Observed>) -> Decision {
    let Some(lease) = lease else {
        return Decision::Create;
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder.is_empty() {
        return Decision::TakeOver;
    }
    if holder == me {
        return Decision::Renew;
    }
    let renew_time = spec.renew_time.as_ref().map(|t| t.0.to_string());
    let duration =
        Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(15)).unwrap_or(15));
    let changed = observed
        .as_ref()
        .is_none_or(|o| o.holder != holder || o.renew_time != renew_time);
    if changed {
        *observed = Some(Observed {
            holder: holder.clone(),
            renew_time,
            at: now,
        });
        return Decision::Follow { holder };
    }
    let since = observed.as_ref().map_or(now, |o| o.at);
    if now.duration_since(since) >= duration {
        Decision::TakeOver
    } else {
        Decision::Follow { holder }
    }
}

/// How long releasing the Lease may take on the way out (within the process's shutdown
/// budget); a standby takes over after the lease duration when it could not be released.
const RELEASE_BUDGET: Duration = Duration::from_secs(2);

/// Why a round did not complete.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("{}", bgpintent_telemetry::api_error(.0))]
    Api(#[from] kube::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

fn now_micro() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// Runs the election loop for one candidate.
#[derive(Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    leader: watch::Sender<bool>,
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        let api = Api::namespaced(client, &config.namespace);
        Self {
            api,
            config,
            leader: watch::channel(false).0,
        }
    }

    /// `true` while this replica may write.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leader.subscribe()
    }

    /// Publishes only changes: a renewal is not news, and waking every subscriber on each
    /// one made the reconcile loop run a full pass every retry period.
    fn set_leader(&self, leading: bool) {
        self.leader.send_if_modified(|current| {
            if *current == leading {
                return false;
            }
            tracing::info!(identity = %self.config.identity, leading, "leadership changed");
            *current = leading;
            true
        });
    }

    /// How long one acquire-or-renew round may take: a leader must be able to step down by
    /// its renew deadline even when the API server does not answer; a follower's round is
    /// bounded by the renew deadline too.
    fn attempt_budget(&self, now: Instant, last_renew: Option<Instant>) -> Duration {
        match last_renew {
            Some(t) if *self.leader.borrow() => {
                (t + self.config.renew_deadline).saturating_duration_since(now)
            }
            _ => self.config.renew_deadline,
        }
    }

    /// Tries to acquire or renew until `shutdown` flips to true; then releases the lease if
    /// held.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut observed = None;
        let mut last_renew: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let budget = self.attempt_budget(now, last_renew);
            let attempt = tokio::select! {
                r = tokio::time::timeout(budget, self.try_once(now, &mut observed)) => r,
                // Shutting down mid-round: the round's outcome no longer matters.
                _ = shutdown.wait_for(|s| *s) => break,
            };
            let attempt = attempt.unwrap_or_else(|_| Err(LeaseError::Timeout(budget)));
            match attempt {
                Ok(true) => {
                    last_renew = Some(now);
                    self.set_leader(true);
                }
                Ok(false) => {
                    last_renew = None;
                    self.set_leader(false);
                }
                Err(error) => {
                    tracing::warn!(%error, "lease update failed");
                    if last_renew.is_none_or(|t| now.duration_since(t) >= self.config.renew_deadline) {
                        self.set_leader(false);
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.retry_period) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        if *self.leader.borrow() {
            self.set_leader(false);
            match tokio::time::timeout(RELEASE_BUDGET, self.release()).await {
                Ok(Ok(())) => tracing::info!(identity = %self.config.identity, "lease released"),
                Ok(Err(error)) => {
                    tracing::warn!(error = %bgpintent_telemetry::api_error(&error), "could not release the lease")
                }
                Err(_) => tracing::warn!(?RELEASE_BUDGET, "could not release the lease in time"),
            }
        }
    }

    /// One round; `Ok(true)` when we hold the lease afterwards.
    async fn try_once(&self, now: Instant, observed: &mut Option<Observed>) -> Result<bool, LeaseError> {
        let current = self.api.get_opt(&self.config.name).await?;
        let decision = decide(now, current.as_ref(), &self.config.identity, observed);
        let seconds = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let result = match (decision, current) {
            (Decision::Follow { .. }, _) => return Ok(false),
            (Decision::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.config.identity.clone()),
                        lease_duration_seconds: Some(seconds),
                        acquire_time: Some(now_micro()),
                        renew_time: Some(now_micro()),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await.map(|_| ())
            }
            (decision, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(Default::default);
                if decision == Decision::TakeOver {
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                    spec.acquire_time = Some(now_micro());
                    tracing::info!(identity = %self.config.identity, previous = ?spec.holder_identity, "taking over the lease");
                }
                spec.holder_identity = Some(self.config.identity.clone());
                spec.lease_duration_seconds = Some(seconds);
                spec.renew_time = Some(now_micro());
                // `lease` still carries the resourceVersion we read: the replace is fenced.
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            (_, None) => return Ok(false),
        };
        match result {
            Ok(()) => Ok(true),
            // Someone else created or renewed it between our read and our write.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(LeaseError::Api(e)),
        }
    }

    async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now_micro());
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renew: &str) -> Lease {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "l"},
            "spec": {"holderIdentity": holder, "renewTime": renew, "leaseDurationSeconds": 15}
        }))
        .unwrap()
    }

    #[test]
    fn decisions_follow_client_go() {
        let t0 = Instant::now();
        let mut observed = None;
        assert_eq!(decide(t0, None, "me", &mut observed), Decision::Create);
        assert_eq!(
            decide(
                t0,
                Some(&lease("me", "2026-01-01T00:00:00.000000Z")),
                "me",
                &mut observed
            ),
            Decision::Renew
        );
        assert_eq!(
            decide(
                t0,
                Some(&lease("", "2026-01-01T00:00:00.000000Z")),
                "me",
                &mut observed
            ),
            Decision::TakeOver
        );

        let other = lease("other", "2026-01-01T00:00:00.000000Z");
        let follow = Decision::Follow {
            holder: "other".into(),
        };
        assert_eq!(decide(t0, Some(&other), "me", &mut observed), follow);
        // Unchanged for less than the lease duration on our clock: still follow.
        assert_eq!(
            decide(t0 + Duration::from_secs(14), Some(&other), "me", &mut observed),
            follow
        );
        // The holder renewed: the observation restarts.
        let renewed = lease("other", "2026-01-01T00:00:10.000000Z");
        assert_eq!(
            decide(t0 + Duration::from_secs(16), Some(&renewed), "me", &mut observed),
            follow
        );
        assert_eq!(
            decide(t0 + Duration::from_secs(30), Some(&renewed), "me", &mut observed),
            follow
        );
        // Unchanged for a full lease duration since we saw it change: expired.
        assert_eq!(
            decide(t0 + Duration::from_secs(31), Some(&renewed), "me", &mut observed),
            Decision::TakeOver
        );
    }

    #[test]
    fn config_constraints() {
        let mut c = LeaseConfig {
            name: "l".into(),
            namespace: "n".into(),
            identity: "a".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        };
        assert!(c.validate().is_ok());
        c.renew_deadline = Duration::from_secs(15);
        assert!(c.validate().is_err());
    }
}
