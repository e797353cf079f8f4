//! The startup parameters unscharf consumes or pins: `unscharf.*` (as parameters or inside `options`
//! in any spelling Postgres accepts), client_encoding and standard_conforming_strings.

use crate::wire::startup::StartupMessage;

/// What the client asked of unscharf, and the startup message to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientParams {
    pub user: String,
    pub purpose: Option<String>,
    pub forward: StartupMessage,
    /// The settings the client gave (see `given_settings`), without those unscharf pins and
    /// without a print setting given as its pin gives it (pgjdbc's `DateStyle=ISO`): the session
    /// starts as a pinned one, with what the server reports at start as its baseline (round 234
    /// BS2: under a database's `SQL, DMY`, every masked date of JDBC was refused).
    pub given: Vec<(String, String)>,
}

/// Settings whose value changes how a masked value prints, pinned in the startup packet unless
/// the client gives them: a server, database or role default (`ALTER SYSTEM`, `ALTER ROLE ALL`,
/// `ALTER DATABASE … SET`), even one reloaded while the session is open, then cannot change what
/// a mask keeps (round 231 BP1-BP4: `bytea_output = escape` showed a `first(12)` mask 12 raw
/// bytes, and `DateStyle = 'German'` a birth date's day and month for its year). DateStyle `ISO`
/// keeps the configured day/month order, which only input reads.
const PRINT_PINS: [(&str, &str); 3] = [
    ("bytea_output", "hex"),
    ("datestyle", "ISO"),
    ("intervalstyle", "postgres"),
];

/// Splits `options` like Postgres's pg_split_opts: whitespace separates, backslash escapes.
pub fn split_options(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_arg = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            if in_arg {
                out.push(std::mem::take(&mut cur));
                in_arg = false;
            }
            continue;
        }
        in_arg = true;
        if c == '\\' {
            if let Some(n) = chars.next() {
                cur.push(n);
            }
        } else {
            cur.push(c);
        }
    }
    if in_arg {
        out.push(cur);
    }
    out
}

fn join_options(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let mut e = String::with_capacity(a.len());
            for c in a.chars() {
                if c.is_whitespace() || c == '\\' {
                    e.push('\\');
                }
                e.push(c);
            }
            e
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A GUC name as Postgres compares it: case-insensitive, `-` read as `_` in long options.
fn guc_name(n: &str) -> String {
    n.to_ascii_lowercase().replace('-', "_")
}

/// Settings a connection may set only at its start (or that load code into the server process)
/// and that act on the backend rather than on what a statement means: post_auth_delay held a
/// connection slot for up to 35 minutes after the client had gone, so a few short sessions
/// locked every other login out (round 95).
const CONNECTION_START_SETTINGS: &[&str] = &[
    "post_auth_delay",
    "ignore_system_indexes",
    "local_preload_libraries",
    "session_preload_libraries",
    "jit_debugging_support",
    "jit_profiling_support",
    "log_connections",
    "log_disconnections",
];

/// Checks the pinned settings and takes out the unscharf ones.
fn setting(name: &str, value: &str, purpose: &mut Option<String>) -> Result<bool, String> {
    match name {
        "unscharf.purpose" => {
            *purpose = Some(value.to_owned());
            Ok(false)
        }
        n if n.starts_with("unscharf.") => Err(format!(
            "unknown unscharf setting `{n}`; the only one is unscharf.purpose"
        )),
        "client_encoding" => {
            // As Postgres's clean_encoding_name reads it: letters and digits only, so asyncpg's
            // `'utf-8'` (quotes included) is UTF8 (round 94).
            let v: String = value
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .collect();
            if matches!(v.as_str(), "utf8" | "unicode" | "sqlascii" | "auto") {
                Ok(false)
            } else {
                // The value is not repeated: it could be anything typed in its place (round 175 F4).
                Err("a client_encoding other than UTF8 is not supported: unscharf speaks UTF8 to clients".into())
            }
        }
        "standard_conforming_strings" => {
            if matches!(value.to_ascii_lowercase().as_str(), "on" | "true" | "yes" | "1") {
                Ok(false)
            } else {
                Err("standard_conforming_strings must stay on behind unscharf".into())
            }
        }
        "replication" => {
            if matches!(value.to_ascii_lowercase().as_str(), "false" | "off" | "no" | "0") {
                Ok(false)
            } else {
                Err("replication connections are not supported through unscharf".into())
            }
        }
        // As SET refuses them (rule 9): the session acts as the login that connected, which the
        // audit trail names and "$user" in search_path resolves to.
        "role" | "session_authorization" => Err(format!(
            "{name} cannot be set through unscharf: the session acts as the login that connected"
        )),
        n if crate::policy::decide::is_forbidden_setting(n) => Err(format!("{n} cannot be set through unscharf")),
        n if CONNECTION_START_SETTINGS.contains(&n) => Err(format!(
            "{n} cannot be set through unscharf: it acts on the server process, not on the session"
        )),
        _ => Ok(true),
    }
}

/// Reads a client's StartupMessage: returns the identity it asks for and the message to forward
/// (unscharf settings removed, client_encoding pinned to UTF8 and standard_conforming_strings to on,
/// the default database filled in).
pub fn client_params(msg: &StartupMessage, default_db: &str) -> Result<ClientParams, String> {
    let mut purpose = None;
    let mut forward = Vec::with_capacity(msg.params.len() + 2);
    let mut user = None;
    let mut has_db = false;
    let mut seen_options = false;
    for (k, v) in &msg.params {
        let name = guc_name(k);
        match name.as_str() {
            "user" => {
                user = Some(v.clone());
                forward.push((k.clone(), v.clone()));
            }
            // The policies and the catalog are those of one database: a session elsewhere on the
            // cluster would be judged by another database's tables. Empty means the default, as
            // it would not for Postgres (the user's name).
            "database" if v.is_empty() => {}
            "database" if v != default_db => {
                return Err(format!("unscharf serves database {default_db} only"));
            }
            "database" => {
                has_db = true;
                forward.push((k.clone(), v.clone()));
            }
            // Postgres keeps the last `options` only, and unscharf would read them all (round
            // 233 BR2: a DateStyle in the first counted as given, and the pin was left out).
            "options" if seen_options => {
                return Err("the startup message holds `options` twice; send one".into());
            }
            "options" => {
                seen_options = true;
                let args = split_options(v);
                let mut keep = Vec::with_capacity(args.len());
                let mut i = 0;
                while i < args.len() {
                    let a = &args[i];
                    let (assignment, consumed) = if a == "-c" {
                        (args.get(i + 1).cloned(), 2)
                    } else if let Some(rest) = a.strip_prefix("-c") {
                        (Some(rest.to_owned()), 1)
                    } else if let Some(rest) = a.strip_prefix("--") {
                        (Some(rest.to_owned()), 1)
                    } else {
                        (None, 1)
                    };
                    match assignment {
                        Some(asg) => {
                            let (n, val) = asg
                                .split_once('=')
                                .ok_or_else(|| format!("option `{asg}` has no value"))?;
                            if setting(&guc_name(n), val, &mut purpose)? && guc_name(n) != "client_encoding" {
                                keep.extend(args[i..(i + consumed).min(args.len())].iter().cloned());
                            }
                        }
                        // Postgres's getopt also reads other switches, run together too: `-Ec
                        // role=x` set the role (round 93). A CRM needs only settings.
                        None => {
                            return Err(format!(
                                "option `{a}` is not supported through unscharf; options may hold only -c name=value or --name=value"
                            ))
                        }
                    }
                    i += consumed;
                }
                if !keep.is_empty() {
                    forward.push((k.clone(), join_options(&keep)));
                }
            }
            "client_encoding" => {
                setting(&name, v, &mut purpose)?;
            }
            _ => {
                if setting(&name, v, &mut purpose)? {
                    forward.push((k.clone(), v.clone()));
                }
            }
        }
    }
    let user = user.ok_or("no user name in the startup message")?;
    if !has_db {
        forward.push(("database".into(), default_db.to_owned()));
    }
    forward.push(("client_encoding".into(), "UTF8".into()));
    // Pinned in the startup packet, so a server, database or role default of `off` cannot make
    // Postgres read backslashes in strings differently from the analyzer.
    forward.push(("standard_conforming_strings".into(), "on".into()));
    let mut forward = StartupMessage {
        major: msg.major,
        minor: msg.minor,
        params: forward,
    };
    let mut given = given_settings(&forward);
    for (name, value) in PRINT_PINS {
        if !given.iter().any(|(n, _)| n == name) {
            forward.params.push((name.to_owned(), value.to_owned()));
        }
    }
    given.retain(|(n, v)| {
        !PRINT_PINS
            .iter()
            .any(|(pn, pv)| pn == n && v.trim().eq_ignore_ascii_case(pv))
    });
    Ok(ClientParams {
        user,
        purpose,
        forward,
        given,
    })
}

/// The settings a startup message gives, as parameters or in `options` (`-c name=value`,
/// `--name=value`), with their names as Postgres reads them.
pub fn given_settings(msg: &StartupMessage) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in &msg.params {
        match guc_name(k).as_str() {
            "user" | "database" | "replication" => {}
            "options" => {
                let args = split_options(v);
                let mut i = 0;
                while i < args.len() {
                    let (assignment, step) = if args[i] == "-c" {
                        (args.get(i + 1).cloned(), 2)
                    } else if let Some(rest) = args[i].strip_prefix("-c").or_else(|| args[i].strip_prefix("--")) {
                        (Some(rest.to_owned()), 1)
                    } else {
                        (None, 1)
                    };
                    if let Some((n, value)) = assignment.as_deref().and_then(|a| a.split_once('=')) {
                        out.push((guc_name(n), value.to_owned()));
                    }
                    i += step;
                }
            }
            name => out.push((name.to_owned(), v.clone())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(params: &[(&str, &str)]) -> StartupMessage {
        StartupMessage {
            major: 3,
            minor: 0,
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn given_settings_are_read_from_parameters_and_options() {
        let m = msg(&[
            ("user", "a"),
            ("TimeZone", "UTC"),
            (
                "options",
                "-c lc_time=C --default-text-search-config=simple -cDateStyle=SQL",
            ),
        ]);
        let names: Vec<String> = given_settings(&m).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["timezone", "lc_time", "default_text_search_config", "datestyle"]
        );
    }

    #[test]
    fn purpose_in_every_spelling_is_consumed() {
        for opts in [
            "-c unscharf.purpose=billing_hotline",
            "-cunscharf.purpose=billing_hotline",
            "--unscharf.purpose=billing_hotline",
            "-c statement_timeout=5s -c UNSCHARF.PURPOSE=billing_hotline",
        ] {
            let p = client_params(&msg(&[("user", "a"), ("options", opts)]), "crm").unwrap();
            assert_eq!(p.purpose.as_deref(), Some("billing_hotline"), "{opts}");
            let fwd = p.forward.get("options").unwrap_or("");
            assert!(!fwd.to_lowercase().contains("unscharf"), "{fwd}");
        }
        let p = client_params(
            &msg(&[
                ("user", "a"),
                ("options", "-c statement_timeout=5s --unscharf.purpose=x -c a\\ b=c\\ d"),
            ]),
            "crm",
        )
        .unwrap();
        assert_eq!(p.forward.get("options"), Some("-c statement_timeout=5s -c a\\ b=c\\ d"));
        let p = client_params(
            &msg(&[
                ("user", "a"),
                ("unscharf.purpose", "sales"),
                ("application_name", "crm"),
            ]),
            "crm",
        )
        .unwrap();
        assert_eq!(p.purpose.as_deref(), Some("sales"));
        assert!(p.forward.get("unscharf.purpose").is_none());
        assert_eq!(p.forward.get("application_name"), Some("crm"));
    }

    /// Round 231: the print settings are pinned unless the client gives them, in any spelling;
    /// what the client gives is forwarded and reported as its own.
    /// Round 233 BR2: Postgres applies the last `options` only.
    #[test]
    fn options_twice_are_refused() {
        let twice = msg(&[
            ("user", "a"),
            ("options", "-c DateStyle=ISO"),
            ("Options", "-c application_name=crm"),
        ]);
        assert!(client_params(&twice, "crm").unwrap_err().contains("twice"));
    }

    #[test]
    fn print_settings_are_pinned_unless_given() {
        let p = client_params(&msg(&[("user", "a")]), "crm").unwrap();
        assert_eq!(p.forward.get("bytea_output"), Some("hex"));
        assert_eq!(p.forward.get("datestyle"), Some("ISO"));
        assert_eq!(p.forward.get("intervalstyle"), Some("postgres"));
        assert!(p.given.iter().all(|(n, _)| n != "bytea_output"), "{:?}", p.given);
        let p = client_params(
            &msg(&[
                ("user", "a"),
                ("DateStyle", "ISO, DMY"),
                ("options", "-c bytea_output=escape --IntervalStyle=iso_8601"),
            ]),
            "crm",
        )
        .unwrap();
        assert_eq!(p.forward.get("bytea_output"), None);
        assert_eq!(p.forward.get("datestyle"), None);
        assert_eq!(p.forward.get("DateStyle"), Some("ISO, DMY"));
        let names: Vec<&str> = p.given.iter().map(|(n, _)| n.as_str()).collect();
        for n in ["datestyle", "bytea_output", "intervalstyle"] {
            assert!(names.contains(&n), "{names:?}");
        }
        // Round 234 BS2: given as the pin gives it, as pgjdbc does, it is forwarded once and
        // counts as pinned.
        let p = client_params(&msg(&[("user", "a"), ("DateStyle", "iso")]), "crm").unwrap();
        assert_eq!(
            p.forward
                .params
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("datestyle"))
                .count(),
            1
        );
        assert!(p.given.iter().all(|(n, _)| n != "datestyle"), "{:?}", p.given);
    }

    #[test]
    fn pinned_settings_and_defaults() {
        let p = client_params(&msg(&[("user", "a"), ("client_encoding", "auto")]), "crm").unwrap();
        assert_eq!(p.forward.get("client_encoding"), Some("UTF8"));
        assert_eq!(p.forward.get("standard_conforming_strings"), Some("on"));
        let p = client_params(
            &msg(&[
                ("user", "a"),
                ("standard_conforming_strings", "on"),
                ("options", "-c standard_conforming_strings=on -c work_mem=8MB"),
            ]),
            "crm",
        )
        .unwrap();
        let scs: Vec<_> = p
            .forward
            .params
            .iter()
            .filter(|(k, _)| k == "standard_conforming_strings")
            .collect();
        assert_eq!(scs.len(), 1, "pinned once: {:?}", p.forward.params);
        assert_eq!(p.forward.get("options"), Some("-c work_mem=8MB"));
        assert_eq!(p.forward.get("database"), Some("crm"));
        assert!(client_params(&msg(&[("user", "a"), ("client_encoding", "SJIS")]), "crm").is_err());
        // Round 94: asyncpg sends the value quoted, and Postgres keeps only letters and digits.
        for v in ["'utf-8'", "UTF-8", "utf_8", "Unicode"] {
            let p = client_params(&msg(&[("user", "a"), ("client_encoding", v)]), "crm").unwrap();
            assert_eq!(p.forward.get("client_encoding"), Some("UTF8"), "{v}");
        }
        assert!(client_params(&msg(&[("user", "a"), ("client_encoding", "'latin1'")]), "crm").is_err());
        assert!(client_params(&msg(&[("user", "a"), ("options", "-c client_encoding=GBK")]), "crm").is_err());
        // Round 175 F4: the value is not repeated in the error (and so the audit trail).
        let typed = "DE89370400440532013000";
        for m in [
            msg(&[("user", "a"), ("client_encoding", typed)]),
            msg(&[("user", "a"), ("options", "-c client_encoding=DE89370400440532013000")]),
        ] {
            let e = format!("{:?}", client_params(&m, "crm").err().unwrap());
            assert!(!e.contains(typed), "{e}");
        }
        assert!(client_params(
            &msg(&[("user", "a"), ("options", "-c standard_conforming_strings=off")]),
            "crm"
        )
        .is_err());
        assert!(client_params(&msg(&[("user", "a"), ("standard_conforming_strings", "off")]), "crm").is_err());
        assert!(client_params(&msg(&[("user", "a"), ("replication", "database")]), "crm").is_err());
        assert!(client_params(&msg(&[("user", "a"), ("unscharf.role", "x")]), "crm").is_err());
        assert!(client_params(&msg(&[("database", "crm")]), "crm").is_err());
        // Red-team round 17: another database of the cluster would be judged by crm's catalog.
        assert!(client_params(&msg(&[("user", "a"), ("database", "postgres")]), "crm").is_err());
        assert!(client_params(&msg(&[("user", "a"), ("database", "CRM")]), "crm").is_err());
        let empty = client_params(&msg(&[("user", "a"), ("database", "")]), "crm").unwrap();
        assert_eq!(empty.forward.get("database"), Some("crm"));
        // Red-team round 13: SET ROLE is refused, so the startup forms are too.
        for (k, v) in [
            ("role", "crm_agents"),
            ("options", "-c role=crm_agents"),
            ("options", "-c ROLE=crm_agents"),
            ("options", "--role=crm_agents"),
            ("options", "-csession_authorization=postgres"),
            ("session_authorization", "postgres"),
            ("options", "-c debug_print_plan=on"),
            // Round 95: a backend that sleeps after authentication holds its slot on the server.
            ("options", "-c post_auth_delay=2000"),
            ("options", "--post-auth-delay=2000"),
            ("post_auth_delay", "2000"),
            ("options", "-c local_preload_libraries=x"),
            ("ignore_system_indexes", "on"),
            // Round 93: switches run together, which Postgres's getopt reads one by one.
            ("options", "-Ec role=crm_agents"),
            ("options", "-Ecrole=crm_agents"),
            ("options", "-E -c role=crm_agents"),
            ("options", "-e"),
            ("options", "-S 1024"),
            ("options", "--"),
            ("options", "-c statement_timeout=5s crm"),
            ("options", "-c enable_seqscan=off"),
        ] {
            assert!(client_params(&msg(&[("user", "a"), (k, v)]), "crm").is_err(), "{k}={v}");
        }
        assert_eq!(split_options("  -c  a=b\\ c  "), vec!["-c", "a=b c"]);
    }
}
