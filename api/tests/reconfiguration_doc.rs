//! docs/reconfiguration.md is the user-facing copy of `PeerIntent::reconfigure`: every reset
//! cause must have a row saying "reset" with its exact reason text, and the live rows must be
//! live in code.

use bgpintent_api::{PeerIntent, Reconfigure, ResetCause};

fn rows() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/reconfiguration.md");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("| "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_reset_cause_is_documented_as_a_reset() {
    let rows = rows();
    for cause in ResetCause::ALL {
        let row = rows
            .iter()
            .find(|r| r.contains(&format!("`{}`", cause.as_str())))
            .unwrap_or_else(|| panic!("no row for {cause:?} ({})", cause.as_str()));
        assert!(row.contains("**reset**"), "{row}");
        // RFC 8538: the rows saying "hard reset" are exactly the causes that send one.
        assert_eq!(
            row.contains("**hard reset**"),
            cause.hard_reset(),
            "{cause:?}: {row}"
        );
    }
}

#[test]
fn documented_live_changes_are_live_in_code() {
    let rows = rows();
    let base = PeerIntent::new();
    let mut cases: Vec<(&str, PeerIntent)> = vec![
        (
            "`keepaliveTimeSeconds`",
            PeerIntent {
                keepalive_time_secs: 7,
                ..base.clone()
            },
        ),
        (
            "`connectRetrySeconds`",
            PeerIntent {
                connect_retry_secs: 7,
                ..base.clone()
            },
        ),
        (
            "`passive`",
            PeerIntent {
                passive: true,
                ..base.clone()
            },
        ),
    ];
    let mut deferral = base.clone();
    deferral.graceful_restart.deferral_time_secs = 7;
    cases.push(("`gracefulRestartDeferralSeconds`", deferral));
    for (field, changed) in cases {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| {field}")))
            .expect(field);
        assert!(row.contains("live"), "{row}");
        assert_eq!(base.reconfigure(&changed), Reconfigure::Live, "{field}");
    }
}
