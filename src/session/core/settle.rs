//! Which client messages must wait for the server's answers to earlier ones: those that use a
//! prepared statement or portal whose last change may yet fail without taking them down with it.

use super::*;

impl Core {
    /// Whether `f` must wait, unread, until the server has answered the batches before it. Judging
    /// it now would judge it by a statement or cursor a failed PREPARE, DECLARE, Parse or Bind never
    /// made, while the server runs the one that name still has.
    pub(super) fn must_wait(&self, f: &Frame) -> Result<bool, CoreError> {
        if self.registry.all_settled() {
            return Ok(false);
        }
        Ok(match f.tag {
            // Its EXECUTE and FETCH names are known only once it is analyzed.
            fe::QUERY => true,
            fe::BIND => !self.statement_settled(fe::bind(f.body())?.statement),
            fe::DESCRIBE => match fe::describe(f.body())? {
                (fe::Target::Statement, name) => !self.statement_settled(name),
                (fe::Target::Portal, name) => !self.portal_settled(name),
            },
            fe::EXECUTE => !self.portal_settled(fe::execute(f.body())?.0),
            _ => false,
        })
    }

    fn statement_settled(&self, name: &str) -> bool {
        self.registry.settled(false, name) && self.registry.statement(name).is_none_or(|f| self.runs_settled(&f))
    }

    fn portal_settled(&self, name: &str) -> bool {
        self.registry.settled(true, name)
            && self.registry.portal(name).is_none_or(|p| {
                self.runs_settled(&p.facts)
                    && p.bound_to
                        .as_ref()
                        .is_none_or(|b| self.registry.settled(b.cursor, &b.name))
            })
    }

    /// An EXECUTE or FETCH is judged by what its name runs.
    fn runs_settled(&self, facts: &StatementFacts) -> bool {
        match &facts.kind {
            Kind::Execute { name } => self.registry.settled(false, name),
            Kind::Fetch { name } => self.registry.settled(true, name),
            _ => true,
        }
    }
}
