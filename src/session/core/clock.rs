//! What unscharf knows of a session's settings that change what a DBA's row filter computes
//! (TimeZone, DateStyle, lc_time, default_text_search_config, …; see policy::decide::clock):
//! whether they may differ from the server's.
//!
//! Many things change them besides a SET: EXECUTE and FETCH of a statement that does, a portal
//! run later, a DBA's function, COMMIT and ROLLBACK (TO) that bring back a value set before, and
//! a WITH HOLD cursor filled at COMMIT under a SET LOCAL (round 164). So a change counts until the
//! session is idle again with nothing left that could run under it: no transaction, nothing in
//! flight, no cursor; from then on the values the server reports tell.

use crate::policy::decide::{
    is_planner_lever, same_as_default, setting_label, Moved, SettingsMove, DAY_ORDER_ONLY, FLOAT_DIGITS, LEVERS_ONLY,
    REPORTED_SETTINGS,
};

#[derive(Debug, Default)]
pub struct Clock {
    /// The values the server last reported (ParameterStatus) of REPORTED_SETTINGS.
    reported: Vec<(String, String)>,
    /// A change of a reported setting let through since the session was last idle and clean.
    changed: Option<String>,
    /// A setting the server does not report was set (at connection start or by a statement):
    /// its value is unknown for the rest of the session.
    unreported: Option<String>,
    /// `moved` as last computed, with the catalog generation whose defaults it compared: asked
    /// for every client message, it changes only with the state above.
    memo: Option<(u64, Option<SettingsMove>)>,
    /// The values the server reported at connection start when the client gave none of
    /// REPORTED_SETTINGS in its startup packet: the database's and the role's defaults, which
    /// only a DBA sets (`ALTER ROLE … SET TimeZone`). They are the session's baseline in place of
    /// the server-wide ones the catalog role reads (round 196 AG1: a per-role TimeZone counted as
    /// moved, and refused every masked date of that role's agents).
    baseline: Vec<(String, String)>,
    /// A planner lever the role's or database's defaults set: it counts last, and only for what
    /// follows the plan (see `policy::decide::Moved`).
    levers: Option<String>,
    /// extra_float_digits was set, at connection start or by a statement: it counts before the
    /// levers and after anything else, and for masks only of floats (`Moved::FloatPrint`).
    digits: Option<String>,
}

impl Clock {
    /// A ParameterStatus from the server.
    pub fn report(&mut self, name: &str, value: &str) {
        self.memo = None;
        let name = name.to_ascii_lowercase();
        if !REPORTED_SETTINGS.contains(&name.as_str()) {
            return;
        }
        match self.reported.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.reported.push((name, value.to_owned())),
        }
    }

    /// A statement that may change setting `name` (`all` for RESET ALL, `?` when a function
    /// of the DBA's may change any) was let through, `via` SET, RESET, set_config() or a call.
    pub fn changed(&mut self, name: &str, via: &str) {
        self.memo = None;
        let how = format!("{via} {}", setting_label(name));
        if is_planner_lever(name) {
            // Round 237 BV2: a client's `SET work_mem` refused every masked date of the session.
            self.levers = Some(format!("{LEVERS_ONLY}{} ({via})", setting_label(name)));
        } else if name == FLOAT_DIGITS {
            self.digits = Some(format!("this session changed settings ({how})"));
        } else if name == "all" || REPORTED_SETTINGS.contains(&name) {
            self.changed = Some(format!("this session changed settings ({how})"));
        } else {
            self.unreported = Some(format!(
                "this session changed settings whose values unscharf cannot see ({how})"
            ));
        }
    }

    /// Startup ended: what the server reported so far of the settings the client did not give
    /// (`given`, lower-cased) is the session's baseline for them. Per setting: a client that gave
    /// its DateStyle (pgjdbc) still has the pinned IntervalStyle as its baseline, not a server's
    /// other one (round 233).
    pub fn set_baseline(&mut self, given: &[&str]) {
        self.memo = None;
        self.baseline = self
            .reported
            .iter()
            .filter(|(name, _)| !given.contains(&name.as_str()))
            .cloned()
            .collect();
    }

    /// A setting given at connection start whose value the server does not report.
    pub fn set_at_start(&mut self, name: &str) {
        self.memo = None;
        let why = format!("this session set settings when it connected ({})", setting_label(name));
        match name == FLOAT_DIGITS {
            true => self.digits = Some(why),
            false => self.unreported = Some(why),
        }
    }

    /// A planner lever set at connection start, by the client or the role's or database's defaults.
    pub fn lever_at_start(&mut self, name: &str) {
        self.memo = None;
        self.levers = Some(format!(
            "{LEVERS_ONLY}{} (when the session connected)",
            setting_label(name)
        ));
    }

    /// Every request has been answered. `clean`: no transaction is open and no cursor is left,
    /// so nothing can bring back or run under a value before the reported ones.
    pub fn settled(&mut self, clean: bool) {
        if clean && self.changed.is_some() {
            self.changed = None;
            self.memo = None;
        }
    }

    /// `moved` for the catalog of `generation`, computed again only after a change.
    pub fn moved_under(&mut self, generation: u64, defaults: &[(String, String)]) -> Option<SettingsMove> {
        match &self.memo {
            Some((g, moved)) if *g == generation => moved.clone(),
            _ => {
                let moved = self.moved(defaults);
                self.memo = Some((generation, moved.clone()));
                moved
            }
        }
    }

    /// Why the settings may differ from `defaults` (the server's), or None if they do not.
    /// Offline (no defaults) nothing is compared.
    pub fn moved(&self, defaults: &[(String, String)]) -> Option<SettingsMove> {
        if defaults.is_empty() {
            return None;
        }
        if let Some(why) = self.unreported.as_ref().or(self.changed.as_ref()) {
            return Some(SettingsMove::new(Moved::Anything, why.clone()));
        }
        let differs = self.reported.iter().filter_map(|(name, value)| {
            let (_, default) = self.baseline.iter().chain(defaults).find(|(n, _)| n == name)?;
            if same_as_default(name, value, default) {
                return None;
            }
            Some(match iso_day_order(name, value, default) {
                Some(order) => SettingsMove::new(
                    Moved::NoPrint,
                    format!("{DAY_ORDER_ONLY}{order} (the server's is {default})"),
                ),
                // Not the value: an agent can make a TimeZone of anything (`<DE8937…>-1`), and
                // the reason reaches the audit trail (round 236 BU2).
                None => SettingsMove::new(
                    Moved::Anything,
                    format!("this session has set {name} to another value than the server's ({default})"),
                ),
            })
        });
        let candidates: Vec<SettingsMove> = differs
            .chain(
                self.reported
                    .iter()
                    .filter_map(|(name, value)| uncanonical(name, value))
                    .map(|why| SettingsMove::new(Moved::Anything, why)),
            )
            .chain(self.digits.clone().map(|why| SettingsMove::new(Moved::FloatPrint, why)))
            .chain(self.levers.clone().map(|why| SettingsMove::new(Moved::NoPrint, why)))
            .collect();
        // The first of those that says the most: a narrow one must not hide a wide one.
        candidates.into_iter().rev().max_by_key(|m| m.level)
    }
}

/// The session's day order, where DateStyle `value` and the baseline `default` both print ISO and
/// differ only in it.
fn iso_day_order<'a>(name: &str, value: &'a str, default: &str) -> Option<&'a str> {
    fn split(s: &str) -> Option<(&str, &str)> {
        s.split_once(',').map(|(style, order)| (style.trim(), order.trim()))
    }
    let ((style, order), (default_style, _)) = (split(value)?, split(default)?);
    let iso = |s: &str| s.eq_ignore_ascii_case("iso");
    (name == "datestyle" && iso(style) && iso(default_style)).then_some(order)
}

/// Why a reported print setting's value is not the one masks are written for, even where it is
/// the server's own: unscharf pins ISO and `postgres` when the client gives none, and a client that
/// gives the server's non-ISO DateStyle itself would otherwise print a `first(4)` birth date as
/// its day and month (round 233 BR1).
fn uncanonical(name: &str, value: &str) -> Option<String> {
    let canonical = match name {
        "datestyle" => value
            .trim_start()
            .get(..3)
            .is_some_and(|s| s.eq_ignore_ascii_case("iso")),
        "intervalstyle" => value.trim().eq_ignore_ascii_case("postgres"),
        _ => true,
    };
    (!canonical).then(|| {
        format!("this session prints with {name} {value}, not as masks are written for (ISO dates, postgres intervals)")
    })
}

#[cfg(test)]
mod tests {
    use super::Clock;

    fn defaults() -> Vec<(String, String)> {
        vec![
            ("timezone".into(), "Etc/UTC".into()),
            ("datestyle".into(), "ISO, MDY".into()),
        ]
    }

    /// Round 233 BR1: a non-ISO DateStyle counts even where it is the server's.
    #[test]
    fn a_print_setting_other_than_the_pinned_one_counts() {
        let mut c = Clock::default();
        let server = vec![("datestyle".to_owned(), "SQL, DMY".to_owned())];
        c.report("DateStyle", "SQL, DMY");
        assert!(c.moved(&server).unwrap().why.contains("SQL, DMY"));
        c.report("DateStyle", "ISO, DMY");
        c.report("IntervalStyle", "postgres");
        assert_eq!(c.moved(&[("datestyle".into(), "ISO, DMY".into())]), None);
        c.report("IntervalStyle", "sql_standard");
        assert!(c.moved(&[("datestyle".into(), "ISO, DMY".into())]).is_some());
    }

    /// Round 229 BN1 / 228 BM2: a planner lever of the role's defaults counts, last, and says it
    /// moves no printed value; anything else that moved comes first.
    #[test]
    fn a_planner_lever_of_the_defaults_counts_last() {
        use crate::policy::decide::Moved;
        let mut c = Clock::default();
        c.report("TimeZone", "Etc/UTC");
        c.lever_at_start("work_mem");
        let why = c.moved(&defaults()).unwrap();
        assert!(why.why.contains("work_mem") && why.level == Moved::NoPrint, "{why:?}");
        // Round 234 BS1: extra_float_digits moves floats, and counts before a lever.
        c.changed("extra_float_digits", "SET");
        c.settled(true);
        let why = c.moved(&defaults()).unwrap();
        assert_eq!(why.level, Moved::FloatPrint, "{why:?}");
        c.set_at_start("bytea_output");
        let why = c.moved(&defaults()).unwrap();
        assert!(
            why.why.contains("bytea_output") && why.level == Moved::Anything,
            "{why:?}"
        );
        let mut c = Clock::default();
        c.set_at_start("extra_float_digits");
        c.changed("timezone", "SET");
        let why = c.moved(&defaults()).unwrap();
        assert_eq!(why.level, Moved::Anything, "{why:?}");
        c.settled(true);
        let why = c.moved(&defaults()).unwrap();
        assert_eq!(why.level, Moved::FloatPrint, "{why:?}");
    }

    /// Round 239 BX1: an ISO DateStyle in another day order prints no date differently; it still
    /// counts, for filters, and never hides a wider move.
    #[test]
    fn the_day_order_of_an_iso_datestyle_moves_no_printed_value() {
        use crate::policy::decide::Moved;
        let mut c = Clock::default();
        c.report("TimeZone", "Etc/UTC");
        c.report("DateStyle", "ISO, DMY");
        let why = c.moved(&defaults()).unwrap();
        assert_eq!(why.level, Moved::NoPrint, "{why:?}");
        c.report("TimeZone", "Europe/Berlin");
        let why = c.moved(&defaults()).unwrap();
        assert_eq!(why.level, Moved::Anything, "{why:?}");
        c.report("TimeZone", "Etc/UTC");
        c.report("DateStyle", "German, DMY");
        let why = c.moved(&defaults()).unwrap();
        assert_eq!(why.level, Moved::Anything, "{why:?}");
    }

    #[test]
    fn a_change_counts_until_the_session_is_idle_and_clean() {
        let mut c = Clock::default();
        c.report("TimeZone", "UTC");
        c.report("DateStyle", "ISO, MDY");
        c.report("server_version", "15");
        assert_eq!(c.moved(&defaults()), None);
        c.changed("timezone", "SET");
        assert!(c.moved(&defaults()).unwrap().why.contains("SET timezone"));
        // Answered inside a transaction (a ROLLBACK may bring another value back), or with a
        // cursor left: it still counts, whatever the server reported.
        c.report("TimeZone", "Etc/UTC");
        c.settled(false);
        assert!(c.moved(&defaults()).is_some());
        c.settled(true);
        assert_eq!(c.moved(&defaults()), None);
        c.report("TimeZone", "Pacific/Kiritimati");
        let why = c.moved(&defaults()).unwrap();
        assert!(
            why.why.contains("timezone") && !why.why.contains("Kiritimati"),
            "{why:?}"
        );
        assert_eq!(c.moved(&[]), None);
        // Remembered per catalog, forgotten on a change.
        assert!(c.moved_under(1, &defaults()).is_some());
        c.report("TimeZone", "Etc/UTC");
        assert_eq!(c.moved_under(1, &defaults()), None);
        assert_eq!(c.moved_under(2, &[]), None);
    }

    #[test]
    fn a_role_default_reported_at_start_is_the_baseline() {
        let mut c = Clock::default();
        c.report("TimeZone", "Europe/Berlin");
        c.report("DateStyle", "ISO, MDY");
        assert!(
            c.moved(&defaults()).is_some(),
            "without a baseline, the server's counts"
        );
        c.set_baseline(&["timezone"]);
        assert!(
            c.moved(&defaults()).is_some(),
            "the client's own TimeZone is no baseline"
        );
        c.set_baseline(&[]);
        assert_eq!(c.moved(&defaults()), None);
        // A change away from the baseline counts, and back to it is settled.
        c.changed("timezone", "SET");
        c.report("TimeZone", "Etc/UTC");
        c.settled(true);
        assert!(c.moved(&defaults()).unwrap().why.contains("timezone"));
        c.report("TimeZone", "Europe/Berlin");
        assert_eq!(c.moved(&defaults()), None);
    }

    #[test]
    fn unreported_settings_count_for_the_rest_of_the_session() {
        let mut c = Clock::default();
        c.changed("default_text_search_config", "SET");
        c.settled(true);
        assert!(c.moved(&defaults()).unwrap().why.contains("default_text_search_config"));
        let mut c = Clock::default();
        c.set_at_start("lc_time");
        assert!(c.moved(&defaults()).is_some());
    }
}
