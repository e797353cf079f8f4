//! What unscharf knows of a session's clock settings (TimeZone, DateStyle, IntervalStyle,
//! lc_time): whether they may differ from the server's, for policy::decide's clock rule.

use crate::policy::decide::{same_as_default, CLOCK_SETTINGS};

#[derive(Debug, Default)]
pub struct Clock {
    /// The values the server last reported (ParameterStatus), by lower-cased name.
    reported: Vec<(String, String)>,
    /// A statement that changes one ran and the server has not answered it yet: what it reports
    /// with its ReadyForQuery is not known before.
    pending: Option<String>,
    /// lc_time, which the server does not report, was set (at connection start or by a statement):
    /// it counts for the rest of the session, as a RESET may be rolled back.
    unreported: Option<String>,
}

impl Clock {
    /// A ParameterStatus from the server.
    pub fn report(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        if !CLOCK_SETTINGS.contains(&name.as_str()) {
            return;
        }
        match self.reported.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.reported.push((name, value.to_owned())),
        }
    }

    /// A statement that changes `name` (`all` for RESET ALL) was let through, `via` SET, RESET or
    /// set_config().
    pub fn changed(&mut self, name: &str, via: &str) {
        let how = format!("{via} {name}");
        // A RESET (of it or of all) brings the server's back; rolled back, one set before, which
        // already counted.
        if name == "lc_time" && via != "RESET" {
            self.unreported = Some(format!("this session changed ({how})"));
        }
        self.pending = Some(how);
    }

    /// lc_time given at connection start.
    pub fn set_at_start(&mut self, name: &str) {
        self.unreported = Some(format!("this session set {name} when it connected"));
    }

    /// Every request the server had has been answered: its reports are the session's settings.
    pub fn settled(&mut self) {
        self.pending = None;
    }

    /// Why the settings may differ from `defaults` (the server's), or None if they do not.
    /// Offline (no defaults) nothing is compared.
    pub fn moved(&self, defaults: &[(String, String)]) -> Option<String> {
        if defaults.is_empty() {
            return None;
        }
        if let Some(how) = &self.pending {
            return Some(format!(
                "a statement before this one changes ({how}) and the server has not answered it yet"
            ));
        }
        if let Some(why) = &self.unreported {
            return Some(why.clone());
        }
        self.reported.iter().find_map(|(name, value)| {
            let (_, default) = defaults.iter().find(|(n, _)| n == name)?;
            (!same_as_default(name, value, default))
                .then(|| format!("this session has set to {name} = {value} (the server's is {default})"))
        })
    }
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

    #[test]
    fn reported_values_count_once_answered() {
        let mut c = Clock::default();
        c.report("TimeZone", "UTC");
        c.report("DateStyle", "ISO, MDY");
        c.report("server_version", "15");
        assert_eq!(c.moved(&defaults()), None);
        c.changed("timezone", "SET");
        assert!(c.moved(&defaults()).unwrap().contains("not answered"));
        c.report("TimeZone", "Pacific/Kiritimati");
        c.settled();
        assert!(c.moved(&defaults()).unwrap().contains("Pacific/Kiritimati"));
        // Rolled back or reset: the server reports the old value again.
        c.changed("timezone", "RESET");
        c.report("TimeZone", "Etc/UTC");
        c.settled();
        assert_eq!(c.moved(&defaults()), None);
        assert_eq!(c.moved(&[]), None);
    }

    #[test]
    fn lc_time_counts_for_the_rest_of_the_session() {
        let mut c = Clock::default();
        c.changed("lc_time", "SET");
        c.settled();
        assert!(c.moved(&defaults()).unwrap().contains("lc_time"));
        let mut c = Clock::default();
        c.set_at_start("lc_time");
        assert!(c.moved(&defaults()).is_some());
    }
}
