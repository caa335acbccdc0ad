//! `bgp-intent-controller`: `run` (the controller against a cluster), and offline `render`
//! and `explain` from manifests.

use std::process::ExitCode;

use bgpintent_controller::cli::{Cli, run};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Unlocked handles: each write takes the lock for itself. Holding `stdout().lock()` across
    // `run` once made the controller hang at its first log line from a runtime thread.
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    match run(cli, &mut out, &mut err) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
