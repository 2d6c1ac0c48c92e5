//! `vqsim`, the command line: glue over the library. `main` parses the arguments, dispatches
//! one function per subcommand and maps errors to exit statuses.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use vqsim::scenario::{Scenario, ScenarioError};

#[derive(Parser)]
#[command(name = "vqsim", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate scenario files and show how they expand into runs, without running anything.
    Check(CheckArgs),
}

#[derive(Args)]
struct CheckArgs {
    /// Scenario TOML files.
    #[arg(required = true, value_name = "SCENARIO")]
    scenarios: Vec<PathBuf>,
    /// Also print each scenario with every key explicit (defaults filled in).
    #[arg(long)]
    resolved: bool,
}

fn main() -> ExitCode {
    // Usage errors exit with status 2 inside clap; --help and --version with 0.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit_status(&err))
        }
    }
}

/// 2 when the user's input is wrong and must be fixed (as for clap's usage errors), 1 when
/// something failed while doing valid work.
fn exit_status(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<ScenarioError>()) {
        2
    } else {
        1
    }
}

fn check(args: &CheckArgs) -> Result<()> {
    for path in &args.scenarios {
        let scenario = Scenario::load(path)?;
        println!("{}", summary(&scenario));
        for axis in &scenario.axes {
            let values = toml::Value::Array(axis.values.clone());
            println!("  {} = {values}", axis.key);
        }
        let seeds: Vec<String> = scenario.seeds.iter().map(u64::to_string).collect();
        println!("  seeds = [{}]", seeds.join(", "));
        if args.resolved {
            println!("\n{}", scenario.resolved_toml());
        }
    }
    Ok(())
}

/// `name: 2 × 3 × 3 seeds = 18 runs` — one factor per axis (its number of values), then seeds.
fn summary(s: &Scenario) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut factors: Vec<String> = s.axes.iter().map(|a| a.values.len().to_string()).collect();
    factors.push(plural(s.seeds.len(), "seed"));
    format!(
        "{}: {} = {}",
        s.name,
        factors.join(" × "),
        plural(s.runs.len(), "run")
    )
}
