//! The `unscharf` command line: serve, check, explain, test, audit and demo.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use tokio::sync::watch;

use unscharf::config::Config;

#[derive(Parser)]
#[command(
    name = "unscharf",
    version,
    about = "PostgreSQL proxy that enforces purpose policies on call-center customer data"
)]
struct Cli {
    /// Config file; with no subcommand, `unscharf --config FILE` serves.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "human", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy. SIGHUP reloads config and policies; SIGTERM/SIGINT drains gracefully.
    Serve,
    /// Validate config and policies; --live also compares them with the upstream catalog.
    Check {
        /// Compare every table and column the policies name with the upstream catalog, and list
        /// campaigns past their contract end whose tables still hold rows.
        #[arg(long)]
        live: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print the decision for a statement without running it.
    Explain {
        /// Login name of the imagined session.
        #[arg(long)]
        user: String,
        /// Purpose the session names (as with unscharf.purpose).
        #[arg(long)]
        purpose: Option<String>,
        /// Upstream roles the user is a member of (in addition to those read with a live catalog).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Offline catalog: a `pg_dump --schema-only` file instead of the upstream.
        #[arg(long)]
        schema: Option<PathBuf>,
        /// The session's search_path [default: the login's own from its role and database
        /// settings with a live catalog, else "$user", public].
        #[arg(long)]
        search_path: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// The SQL to explain (several statements allowed).
        sql: String,
    },
    /// Run policy test cases (default policies/tests/*.yaml beside the policies); exit 1 on a mismatch.
    Test {
        /// Directories of test files, or test files (default: the policies' tests/).
        paths: Vec<PathBuf>,
        /// Test every file against this `pg_dump --schema-only` file.
        #[arg(long)]
        schema: Option<PathBuf>,
        /// Test against the upstream catalog.
        #[arg(long)]
        live: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The security team's view of the audit trail.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Start a throwaway Postgres with the sample data and the proxy on 127.0.0.1:6432.
    Demo {
        /// Where the proxy listens.
        #[arg(long, default_value = "127.0.0.1:6432")]
        listen: String,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// List events, newest last.
    List(AuditArgs),
    /// Count events by user, purpose, reason and campaign.
    Summary(AuditArgs),
    /// Check the hash chain across the file and its rotated predecessors; exit 1 if it is broken.
    /// The whole chain is always checked; filters only count the events they match.
    Verify(AuditArgs),
}

#[derive(clap::Args)]
struct AuditArgs {
    /// The trail (e.g. audit.jsonl); rotated files are read too.
    file: PathBuf,
    /// From this time on (RFC 3339, or a date: from its start, UTC).
    #[arg(long)]
    since: Option<String>,
    /// Before this time (RFC 3339), or up to this date's end (UTC).
    #[arg(long)]
    until: Option<String>,
    /// Only this login.
    #[arg(long)]
    user: Option<String>,
    /// Only this purpose.
    #[arg(long)]
    purpose: Option<String>,
    /// Only this reason (rule code, e.g. protected_column).
    #[arg(long)]
    reason: Option<String>,
    /// Only events that touched this campaign.
    #[arg(long)]
    campaign: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// Runs an audit subcommand; its exit status: 0, or `verify_status` for `verify`.
fn audit(action: &AuditAction) -> Result<i32> {
    use unscharf::tools::audit as a;
    let filter = |args: &AuditArgs| -> Result<a::Filter> {
        let f = a::Filter {
            since: args
                .since
                .as_deref()
                .map(a::parse_time)
                .transpose()
                .map_err(anyhow::Error::msg)?,
            until: args
                .until
                .as_deref()
                .map(a::parse_until)
                .transpose()
                .map_err(anyhow::Error::msg)?,
            user: args.user.clone(),
            purpose: args.purpose.clone(),
            reason: args.reason.clone(),
            campaign: args.campaign.clone(),
        };
        f.validate().map_err(anyhow::Error::msg)?;
        Ok(f)
    };
    match action {
        AuditAction::List(args) => {
            let f = filter(args)?;
            for note in a::unknown_values(&args.file, &f)? {
                eprintln!("note: {note}");
            }
            let events = a::list(&args.file, &f)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&events)?);
            } else {
                print!("{}", a::render_list(&events));
            }
            Ok(0)
        }
        AuditAction::Summary(args) => {
            let f = filter(args)?;
            for note in a::unknown_values(&args.file, &f)? {
                eprintln!("note: {note}");
            }
            let events = a::list(&args.file, &f)?;
            let groups = a::summary(&events);
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({"events": events.len(), "groups": groups}))?
                );
            } else {
                print!("{}", a::render_summary(&groups, events.len()));
            }
            Ok(0)
        }
        AuditAction::Verify(args) => {
            let (file, json) = (&args.file, args.json);
            let f = filter(args)?;
            let r = unscharf::audit::verify::verify(file)?;
            // A chain cannot be verified in part; the filters say how many verified events they match.
            let matching = match f.is_empty() || r.problem.is_some() {
                true => None,
                false => Some(a::list(file, &f)?.len()),
            };
            if json {
                let problem = r
                    .problem
                    .as_ref()
                    .map(|p| serde_json::json!({"file": p.file, "line": p.line, "what": p.what}));
                let later: Vec<serde_json::Value> = r
                    .later
                    .iter()
                    .map(|p| serde_json::json!({"file": p.file, "line": p.line, "what": p.what}))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"ok": r.problem.is_none(), "complete": r.dropped == 0, "events": r.events, "matching": matching, "files": r.files, "anchored": r.anchored, "dropped": r.dropped, "problem": problem, "later_problems": later})
                    )?
                );
            } else {
                print!("{}", a::render_verify(&r));
                if let Some(n) = matching {
                    println!("{n} of them match the filters");
                }
            }
            Ok(a::verify_status(&r))
        }
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::filter::{filter_fn, FilterExt};
    use tracing_subscriber::prelude::*;
    let filter = unscharf::logging::log_filter(std::env::var("UNSCHARF_LOG").ok().as_deref())
        .and(filter_fn(|m| unscharf::logging::shown(m.target())));
    // Colours only for a terminal: a log file kept raw escape codes (round 125).
    use std::io::IsTerminal;
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => tracing_subscriber::registry().with(layer.with_filter(filter)).init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.json().with_filter(filter))
            .init(),
    }
}

fn config_path(cli: &Cli) -> PathBuf {
    cli.config.clone().unwrap_or_else(|| PathBuf::from("unscharf.yaml"))
}

/// Turns SIGTERM/SIGINT into the shutdown signal.
fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutting down: no new sessions; statements in flight may finish");
        let _ = tx.send(true);
    });
    rx
}

/// SIGHUP reloads config and policies; a broken version keeps the old one in force.
fn reload_on_sighup(shared: std::sync::Arc<unscharf::server::Shared>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            let _ = shared.reload().await;
        }
    });
}

/// Runs the proxy with signal handling and the admin endpoint until SIGTERM/SIGINT.
async fn run(config: Config) -> Result<()> {
    let addr = config.listen_addr()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let (shared, writer) = unscharf::server::prepare(config).await?;
    reload_on_sighup(shared.clone());
    unscharf::server::spawn_maintenance(shared.clone());
    let shutdown = shutdown_on_signals();
    if let Some(admin) = unscharf::admin::spawn(shared.clone(), shutdown.clone()).await? {
        tracing::info!(%admin, "admin endpoint (/metrics, /healthz) listening");
    }
    tracing::info!(%addr, "unscharf listening");
    unscharf::server::run_until(shared.clone(), listener, shutdown).await;
    unscharf::server::finish(shared, writer).await;
    Ok(())
}

async fn serve(cli: &Cli) -> Result<()> {
    let path = config_path(cli);
    let config = Config::load(&path).with_context(|| format!("loading {}", path.display()))?;
    run(config).await
}

async fn policy_tests(cli: &Cli, paths: &[PathBuf], schema: Option<&PathBuf>, live: bool, json: bool) -> Result<bool> {
    use unscharf::tools::policytest as t;
    let path = config_path(cli);
    let config = Config::load(&path).with_context(|| format!("loading {}", path.display()))?;
    let policy = load_policies(&config)?;
    let paths = match paths {
        [] => vec![config.policies_dir().join("tests")],
        some => some.to_vec(),
    };
    let fixed = match (schema, live) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            Some(unscharf::catalog::offline::from_schema_sql(
                &text,
                &file.display().to_string(),
            )?)
        }
        (None, true) => {
            let mut client = unscharf::catalog::live::connect(&config).await?;
            Some(unscharf::catalog::live::load(&mut client, 1).await?)
        }
        (None, false) => None,
    };
    let source = match &fixed {
        Some(c) => t::CatalogSource::Fixed(c),
        None => t::CatalogSource::PerFile,
    };
    let mut files = Vec::new();
    for p in &paths {
        let found = t::files(p).with_context(|| format!("reading {}", p.display()))?;
        if found.is_empty() {
            bail!("no test files (*.yaml) in {}", p.display());
        }
        files.extend(found);
    }
    let mut results = Vec::new();
    for f in &files {
        results.extend(t::run_file(f, &policy, &source)?);
    }
    if json {
        let v: Vec<serde_json::Value> = results
            .iter()
            .map(|r| serde_json::json!({"file": r.file, "name": r.name, "passed": r.passed, "expected": r.expected.to_string(), "actual": r.actual.to_string()}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", t::render(&results));
    }
    Ok(results.iter().all(|r| r.passed))
}

fn today() -> chrono::NaiveDate {
    chrono::Local::now().date_naive()
}

fn load_policies(config: &Config) -> Result<unscharf::policy::PolicySet> {
    unscharf::policy::load::load_dir(&config.policies_dir(), config.pseudonym_key().as_deref())
        .map_err(|e| anyhow::anyhow!("{e}"))
}

async fn check(cli: &Cli, live: bool, json: bool) -> Result<bool> {
    use unscharf::tools::check;
    let path = config_path(cli);
    let config = Config::load(&path).with_context(|| format!("loading {}", path.display()))?;
    let policy = load_policies(&config)?;
    let mut report = check::summarize(&policy, today());
    let mut ended = Vec::new();
    // Offline only the logins the files name are known; --live follows roles too.
    let mut logins = check::named_logins(&policy);
    if live {
        let mut client = unscharf::catalog::live::connect(&config).await?;
        let catalog = unscharf::catalog::live::load(&mut client, 1).await?;
        check::compare(&policy, &catalog, &mut report);
        let roles = client
            .query("SELECT rolname::text FROM pg_catalog.pg_roles", &[])
            .await?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        check::members_and_functions(&policy, &catalog, &roles, &mut report);
        // The catalog read every login's roles already (for the warning at reload).
        logins = catalog.login_roles.clone();
        // Bodies of functions in languages whose source is text (SQL, PL/pgSQL, …), for
        // check::listed_bodies.
        // Those without a search_path of their own resolve names on the agent's.
        let rows = client
            .query(
                "SELECT n.nspname::text, p.proname::text, \
                 CASE WHEN p.prosqlbody IS NOT NULL THEN pg_catalog.pg_get_functiondef(p.oid) ELSE p.prosrc END, \
                 coalesce(pg_catalog.array_to_string(p.proconfig, ' ') ~ '(^| )search_path=', false) \
                 FROM pg_catalog.pg_proc p \
                 JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
                 JOIN pg_catalog.pg_language l ON l.oid = p.prolang \
                 WHERE l.lanname NOT IN ('c', 'internal') AND (p.oid >= 16384 OR n.nspname NOT IN ('pg_catalog', 'information_schema'))",
                &[],
            )
            .await?;
        let mut bodies = std::collections::HashMap::new();
        let mut unpinned = std::collections::HashSet::new();
        for r in &rows {
            // Overloads share a name, and a listing covers them all.
            let name = unscharf::policy::QName::new(r.get(0), r.get(1));
            if !r.get::<_, bool>(3) {
                unpinned.insert(name.clone());
            }
            let body: &mut String = bodies.entry(name).or_default();
            body.push('\n');
            body.push_str(r.get(2));
        }
        check::listed_bodies(&policy, &catalog, &bodies, &unpinned, &mut report);
        report.findings.extend(check::watch_finding(&client).await);
        for (campaign, table) in check::ended_tables(&policy, &catalog, today()) {
            let (what, rows, exact) = match check::count_rows(&client, &table).await {
                check::Rows::Exact(0) | check::Rows::About(0) => continue,
                check::Rows::Exact(n) => (format!("still holds {n} rows"), n, true),
                check::Rows::About(n) => (format!("still holds about {n} rows"), n, false),
                check::Rows::Unknown(why) => (
                    format!(
                        "may still hold rows: the catalog role cannot count them, and {why}; count them as a superuser"
                    ),
                    -1,
                    false,
                ),
            };
            report.findings.push(check::Finding {
                level: "error".into(),
                what: format!("contract of campaign {campaign} has ended but {table} {what}: the data must be deleted"),
            });
            ended.push(
                serde_json::json!({"campaign": campaign, "table": table.to_string(), "rows": rows, "exact": exact}),
            );
        }
    }
    report.findings.extend(check::several_purposes(&policy, &logins));
    if json {
        let mut v = serde_json::to_value(&report)?;
        v["ended_with_rows"] = serde_json::Value::Array(ended);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", check::render(&report));
    }
    Ok(report.errors() == 0)
}

#[allow(clippy::too_many_arguments)]
async fn explain(
    cli: &Cli,
    user: &str,
    purpose: Option<&str>,
    roles: &[String],
    schema: Option<&PathBuf>,
    search_path: Option<&str>,
    json: bool,
    sql: &str,
) -> Result<()> {
    use unscharf::tools::explain;
    let path = config_path(cli);
    let config = Config::load(&path).with_context(|| format!("loading {}", path.display()))?;
    let policy = load_policies(&config)?;
    let mut roles = roles.to_vec();
    // The proxy reads a login's search_path when it logs in; so does explain, from the settings
    // that give it (round 262 CU3: a role's `SET search_path = stadtwerke, public` was ignored).
    let mut search_path = search_path.map(str::to_owned);
    let catalog = match schema {
        Some(file) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            unscharf::catalog::offline::from_schema_sql(&text, &file.display().to_string())?
        }
        None => {
            let mut client = unscharf::catalog::live::connect(&config).await?;
            let exists = !client
                .query("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", &[&user])
                .await?
                .is_empty();
            // A role to imagine that the server does not have is most likely misspelt (round 125).
            for role in roles.iter() {
                let known = !client
                    .query("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", &[role])
                    .await?
                    .is_empty();
                if !known {
                    eprintln!("note: role {role} (--role) does not exist on the server");
                }
            }
            // A login not created yet (or misspelt) is no broken connection (round 116): with
            // --role it is imagined with just those roles.
            match (exists, roles.is_empty()) {
                (true, _) => roles.extend(unscharf::catalog::live::memberships(&client, user).await?),
                (false, true) => bail!(
                    "login {user} does not exist on the server; check the spelling, or pass --role ROLE to imagine it as a member of ROLE"
                ),
                (false, false) => {
                    eprintln!("note: login {user} does not exist on the server; imagined as a member of {}", roles.join(", "));
                    roles.push(user.to_owned());
                }
            }
            if search_path.is_none() && exists {
                search_path = unscharf::catalog::live::login_search_path(&client, user).await?;
                if let Some(p) = &search_path {
                    eprintln!("note: search_path {p} (the login's settings; --search-path overrides it)");
                }
            }
            unscharf::catalog::live::load(&mut client, 1).await?
        }
    };
    let search_path = search_path.unwrap_or_else(|| "\"$user\", public".to_owned());
    let search_path = search_path.as_str();
    let session = explain::Session {
        user,
        purpose,
        roles: &roles,
        search_path: unscharf::catalog::parse_search_path(search_path)
            .ok_or_else(|| anyhow::anyhow!("--search-path: Postgres would reject {search_path:?}"))?,
    };
    let e = explain::explain(sql, &session, &policy, &catalog, today());
    if json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        print!("{}", explain::render(&e));
    }
    Ok(())
}

async fn demo(listen: &str) -> Result<()> {
    let demo = unscharf::demo::prepare(listen)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let addr = demo.config.listen_addr()?;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => bail!("cannot listen on {addr}: {e} (is another demo running? use --listen 127.0.0.1:PORT)"),
    };
    println!("{}", unscharf::demo::banner(listen, &demo));
    drop(listener);
    run(demo.config.clone()).await?;
    drop(demo);
    println!("demo stopped; the throwaway cluster was removed");
    Ok(())
}

fn main() {
    // The error and its causes, one per line: a DBA's policy error is no crash, so no backtrace
    // even where RUST_BACKTRACE is set (round 94).
    if let Err(e) = run_cli() {
        eprintln!("Error: {e}");
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}

fn run_cli() -> Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        match &cli.command {
            None | Some(Command::Serve) => serve(&cli).await,
            Some(Command::Demo { listen }) => demo(listen).await,
            Some(Command::Test {
                paths,
                schema,
                live,
                json,
            }) => {
                if !policy_tests(&cli, paths, schema.as_ref(), *live, *json).await? {
                    std::process::exit(1);
                }
                Ok(())
            }
            Some(Command::Audit { action }) => {
                match audit(action)? {
                    0 => {}
                    code => std::process::exit(code),
                }
                Ok(())
            }
            Some(Command::Check { live, json }) => {
                if !check(&cli, *live, *json).await? {
                    std::process::exit(1);
                }
                Ok(())
            }
            Some(Command::Explain {
                user,
                purpose,
                roles,
                schema,
                search_path,
                json,
                sql,
            }) => {
                explain(
                    &cli,
                    user,
                    purpose.as_deref(),
                    roles,
                    schema.as_ref(),
                    search_path.as_deref(),
                    *json,
                    sql,
                )
                .await
            }
        }
    })
}
