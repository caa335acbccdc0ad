//! `bgp-intent-speaker`: runs one Node's BGP sessions (see [`bgpintent_speaker::app`]).

use std::process::ExitCode;

use bgpintent_speaker::app::{Cli, Command, run_blocking};
use clap::Parser;

fn main() -> ExitCode {
    let Command::Run(args) = Cli::parse().command;
    match run_blocking(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
