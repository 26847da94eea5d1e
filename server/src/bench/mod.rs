//! `behalf bench URL`: a load generator anyone can rerun against a running server.
//! It starts nothing and sends traffic only to URL: sign-ins, members' pages (their
//! own and on behalf), the admin's members search deep into a large database, whole
//! switches, concurrent orders on behalf, and a sign-in flood. Each row reports
//! requests, errors, requests per second, p50/p95/p99 and the server's memory; the
//! table is printed at the end, and `--json PATH` keeps the figures with the machine.
//!
//! - `target.rs`: the URL, checked; `client.rs`: the requests; `meter.rs`: running a
//!   row; `scenarios.rs`, `flood.rs` and `api.rs`: the scenarios; `report.rs`: table
//!   and JSON; `procfs.rs`: the server's process and memory, the machine.

mod api;
mod client;
mod flood;
mod meter;
mod procfs;
mod report;
mod scenarios;
mod target;

use std::{path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};

/// What the bench answers: a sentence for the operator when it cannot run. (Its own
/// type: the bench imports nothing of the server, so `config` may name its options.)
pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;
use meter::Budget;
use report::Row;
use target::Target;

/// The accounts `make bench` creates (`end2end/bench.sh`), and their password.
pub const DEFAULT_ADMIN: &str = "bench-admin@behalf.test";
pub const DEFAULT_ACTOR: &str = "bench-support@behalf.test";
pub const DEFAULT_MEMBER: &str = "bench-member@behalf.test";
pub const DEFAULT_PASSWORD: &str = "behalf-bench-password";

#[derive(Debug, Args)]
#[command(after_help = "Scenarios, in their default order:\n  \
    signin   POST /api/v1/login with the member's right password (4 clients at once)\n  \
    browse   the member's / and /account/orders with a cookie; then the same pages on behalf \
             (rows browse and browse_on_behalf)\n  \
    members  the admin's /admin/members?q=smi and its Next links, --depth pages deep\n  \
    switch   start on behalf (password and reason), two pages, one order, leave: one operation\n  \
    orders   one session on behalf per connection, all placing orders at once (orders/s)\n  \
    flood    bursts of --flood-burst wrong-password sign-ins to unknown emails while members \
             load / (rows flood and flood_signin)\n  \
    api_switch  POST /api/v1/alias_login then /api/v1/alias_logout with bearer tokens: one operation\n  \
    one_click   create a one-click link (API), open it, continue (303), a guessed one (404): one \
             operation\n\n\
    Start the server with --sign-in-per-ip-per-minute 100000: every request comes from one \
    address, and the default limit (60 a minute) would refuse the sign-ins.")]
pub struct BenchArgs {
    /// The running server, e.g. http://127.0.0.1:3000 (http:// only; nothing else is
    /// contacted).
    #[arg(value_parser = Target::parse)]
    pub url: Target,
    /// A scenario to run; repeat it for several. Default: all, in the order signin,
    /// browse, members, switch, orders, flood, api_switch, one_click.
    #[arg(long = "scenario", value_enum, value_name = "NAME")]
    pub scenarios: Vec<Scenario>,
    /// Seconds each row runs for, at most.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub duration: u64,
    /// Operations each row sends, at most (a switch is one operation of five requests).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,
    /// Connections (workers) at once, like wrk -c. `signin`, `switch`, `api_switch` and
    /// `one_click` use at most 4: the per-account sign-in throttle and the
    /// re-authentication lockout check at most five passwords of one account at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub connections: u32,
    /// Write the results as JSON to this file (its directory is created).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// The password of the accounts below.
    #[arg(long, env = "BEHALF_BENCH_PASSWORD", default_value = DEFAULT_PASSWORD, hide_env_values = true)]
    pub password: String,
    /// An account with admin access, for the members search.
    #[arg(long, default_value = DEFAULT_ADMIN, value_name = "EMAIL")]
    pub admin: String,
    /// A support engineer or editor who may log in on behalf of --member.
    #[arg(long, default_value = DEFAULT_ACTOR, value_name = "EMAIL")]
    pub actor: String,
    /// A member (lower in rank than --actor) who signs in, browses and is acted for.
    #[arg(long, default_value = DEFAULT_MEMBER, value_name = "EMAIL")]
    pub member: String,
    /// The server's process ID, to report its memory (VmRSS). By default, when URL is
    /// on this machine's loopback, the process listening on its port.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Pages deep the members scenario follows Next before it searches again.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub depth: u32,
    /// Wrong-password sign-ins sent at once in each burst of the flood.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=5_000))]
    pub flood_burst: u32,
}

/// A scenario of the bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Signin,
    Browse,
    Members,
    Switch,
    Orders,
    Flood,
    #[value(name = "api_switch")]
    ApiSwitch,
    #[value(name = "one_click")]
    OneClick,
}

impl Scenario {
    /// Every scenario, in the order they run by default.
    pub const ALL: [Scenario; 8] = [
        Scenario::Signin,
        Scenario::Browse,
        Scenario::Members,
        Scenario::Switch,
        Scenario::Orders,
        Scenario::Flood,
        Scenario::ApiSwitch,
        Scenario::OneClick,
    ];

    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Signin => "signin",
            Scenario::Browse => "browse",
            Scenario::Members => "members",
            Scenario::Switch => "switch",
            Scenario::Orders => "orders",
            Scenario::Flood => "flood",
            Scenario::ApiSwitch => "api_switch",
            Scenario::OneClick => "one_click",
        }
    }

    /// Runs the scenario: its rows, or why it could not be set up.
    async fn run(self, bench: &Bench) -> Result<Vec<Row>, String> {
        match self {
            Scenario::Signin => scenarios::signin(bench).await,
            Scenario::Browse => scenarios::browse(bench).await,
            Scenario::Members => scenarios::members(bench).await,
            Scenario::Switch => scenarios::switch(bench).await,
            Scenario::Orders => scenarios::orders(bench).await,
            Scenario::Flood => flood::flood(bench).await,
            Scenario::ApiSwitch => api::api_switch(bench).await,
            Scenario::OneClick => api::one_click(bench).await,
        }
    }
}

/// The scenarios asked for, in the order given and each once; all when none is.
fn chosen(asked: &[Scenario]) -> Vec<Scenario> {
    if asked.is_empty() {
        return Scenario::ALL.to_vec();
    }
    let mut out = Vec::new();
    for scenario in asked {
        if !out.contains(scenario) {
            out.push(*scenario);
        }
    }
    out
}

/// What every scenario needs: where, how much, and as whom.
#[derive(Clone, Debug)]
pub struct Bench {
    pub target: Target,
    pub budget: Budget,
    pub password: String,
    pub admin: String,
    pub actor: String,
    pub member: String,
    pub depth: u32,
    pub flood_burst: usize,
}

/// A scenario that could not be set up: one row with the reason, counted as an error.
fn failed(scenario: Scenario, error: String) -> Row {
    Row {
        name: scenario.name().to_string(),
        operations: 0,
        requests: 0,
        errors: 1,
        seconds: 0.0,
        latency: None,
        rss_kib: None,
        extra: Default::default(),
        first_error: Some(format!("could not start: {error}")),
    }
}

/// Fails unless the server answers its health check.
async fn check_health(target: &Target) -> BenchResult<()> {
    let answer = client::bare_client()
        .get(target.url("/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match answer {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!(
            "{target}/healthz answered {}: is the server up?",
            response.status()
        )
        .into()),
        Err(_) => Err(format!(
            "nothing answers at {target}: start the server first (behalf bench starts nothing)"
        )
        .into()),
    }
}

/// The server's process: `--server-pid`, or the one listening on the URL's port on
/// this machine's loopback; `None` when neither is known (memory is then "n/a").
fn server_process(args: &BenchArgs) -> Option<u32> {
    if let Some(pid) = args.server_pid {
        if procfs::rss_kib(pid).is_none() {
            eprintln!("note: the memory of process {pid} cannot be read; RSS will be n/a");
        }
        return Some(pid);
    }
    args.url.loopback_port().and_then(procfs::listening_pid)
}

/// Runs the scenarios, prints the table, writes the JSON. Fails when a scenario could
/// not be set up (after running the others); errors during a row are only counted.
pub async fn run(args: BenchArgs) -> BenchResult<()> {
    check_health(&args.url).await?;
    let scenarios = chosen(&args.scenarios);
    let server_pid = server_process(&args);
    let budget = Budget {
        duration: Duration::from_secs(args.duration),
        operations: args.requests,
        connections: args.connections as usize,
        server_pid,
    };
    let bench = Bench {
        target: args.url.clone(),
        budget,
        password: args.password.clone(),
        admin: args.admin.clone(),
        actor: args.actor.clone(),
        member: args.member.clone(),
        depth: args.depth,
        flood_burst: args.flood_burst as usize,
    };
    let machine = report::Machine::here();
    let names: Vec<&str> = scenarios.iter().map(|s| s.name()).collect();
    eprintln!(
        "behalf bench {}: {} — at most {} s and {} operations each, {} connections; server process {}; {} cores, {}",
        bench.target,
        names.join(", "),
        args.duration,
        args.requests,
        args.connections,
        server_pid.map_or("unknown".to_string(), |pid| pid.to_string()),
        machine.cores,
        machine.cpu
    );
    let mut rows = Vec::new();
    let mut not_run = Vec::new();
    for scenario in scenarios {
        match scenario.run(&bench).await {
            Ok(more) => rows.extend(more),
            Err(error) => {
                eprintln!("{}: {error}", scenario.name());
                rows.push(failed(scenario, error));
                not_run.push(scenario.name());
            }
        }
    }
    print!("{}", report::table(&rows));
    if let Some(path) = &args.json {
        let settings = report::Settings {
            url: bench.target.to_string(),
            duration_seconds: args.duration,
            requests_cap: args.requests,
            connections: budget.connections,
            server_pid,
        };
        write_json(path, &report::to_json(&machine, &settings, &rows))?;
        eprintln!("results written to {}", path.display());
    }
    if !not_run.is_empty() {
        return Err(format!("could not run: {}", not_run.join(", ")).into());
    }
    Ok(())
}

/// Writes `value` to `path`, pretty, creating its directory.
fn write_json(path: &std::path::Path, value: &serde_json::Value) -> BenchResult<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// `behalf bench`'s options alone, as the command line parses them.
    #[derive(Debug, Parser)]
    struct Bench {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn bench(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        Bench::try_parse_from(["bench"].iter().chain(args)).map(|bench| bench.args)
    }

    #[test]
    fn the_defaults_match_what_make_bench_creates() {
        let args = bench(&["http://127.0.0.1:3000"]).unwrap();
        assert_eq!(args.url.origin(), "http://127.0.0.1:3000");
        assert_eq!(
            (args.duration, args.requests, args.connections),
            (10, 100_000, 16)
        );
        assert_eq!(chosen(&args.scenarios), Scenario::ALL.to_vec());
        let script = include_str!("../../../end2end/bench.sh");
        for account in [DEFAULT_ADMIN, DEFAULT_ACTOR, DEFAULT_MEMBER, DEFAULT_PASSWORD] {
            assert!(script.contains(account), "end2end/bench.sh creates {account}");
        }
    }

    #[test]
    fn scenarios_run_in_the_order_given_each_once() {
        let args = bench(&[
            "http://127.0.0.1:3000",
            "--scenario",
            "orders",
            "--scenario",
            "signin",
            "--scenario",
            "orders",
        ])
        .unwrap();
        assert_eq!(chosen(&args.scenarios), [Scenario::Orders, Scenario::Signin]);
        assert!(bench(&["http://127.0.0.1:3000", "--scenario", "nap"]).is_err());
        let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "signin",
                "browse",
                "members",
                "switch",
                "orders",
                "flood",
                "api_switch",
                "one_click"
            ]
        );
        for scenario in Scenario::ALL {
            assert_eq!(
                Scenario::from_str(scenario.name(), false).unwrap(),
                scenario,
                "the command line's name is the report's"
            );
        }
    }

    #[test]
    fn a_bad_url_or_budget_is_refused_before_anything_is_sent() {
        let error = bench(&["https://127.0.0.1:3000"]).unwrap_err().to_string();
        assert!(error.contains("https is not supported"), "{error}");
        let error = bench(&["localhost:3000"]).unwrap_err().to_string();
        assert!(error.contains("must start with http://"), "{error}");
        assert!(bench(&["http://127.0.0.1:3000", "--duration", "0"]).is_err());
        assert!(bench(&["http://127.0.0.1:3000", "--requests", "0"]).is_err());
        assert!(bench(&["http://127.0.0.1:3000", "--connections", "0"]).is_err());
    }
}
