//! Prepared statements after a catalog change: Postgres analyzes them again, and so does the proxy.

use super::*;

impl Core {
    /// Whether the prepared statement `name` still means what it was judged as. Once the catalog
    /// has changed, Postgres analyzes a prepared statement again before it next runs (or is
    /// described), and resolves every name anew: a column added since can take over a name that
    /// meant an outer one, a whole-row reference grows, an unqualified table can be another
    /// schema's (round 146). Its text is analyzed again under today's catalog; a statement that
    /// now means anything else, or whose text was not kept (SQL PREPARE), must be prepared again.
    pub(super) fn current(&self, name: &str, env: &Env<'_>) -> Result<(), Refusal> {
        let Some(stored) = self.registry.stored(name) else {
            return Ok(());
        };
        if stored.fingerprint.get() == env.catalog.fingerprint && !stored.changed.get() {
            return Ok(());
        }
        let changed = || {
            Refusal::new(
                Reason::UnsupportedStatement,
                format!(
                    "the database's definitions changed since `{}` was prepared, and Postgres would analyze it again to a different meaning; prepare it again",
                    stored.facts.statement
                ),
            )
        };
        // A long text is not analyzed again on the session thread, which other sessions share.
        let Some(source) = stored
            .source
            .as_ref()
            .filter(|s| s.len() <= LARGE_FRAME && !stored.changed.get())
        else {
            stored.changed.set(true);
            return Err(changed());
        };
        // Where it resolved names on search_path, it does so on the values it was judged under
        // (a later change of search_path is refused by `same_paths`).
        let paths: &[Vec<String>] = match stored.facts.paths.is_empty() {
            true => &self.paths,
            false => &stored.facts.paths,
        };
        let ctx = AnalyzeCtx {
            search_paths: paths,
            revert_paths: &[],
            ..self.analyze_ctx(env)
        };
        let again = env.cache.analyze(source, ctx).ok().and_then(|l| l.analysis.ok());
        match again.as_deref().map(|a| a.statements.as_slice()) {
            Some([f]) if **f == *stored.facts => {
                stored.fingerprint.set(env.catalog.fingerprint);
                Ok(())
            }
            _ => {
                stored.changed.set(true);
                Err(changed())
            }
        }
    }
}
