//! Masking: the mask functions, result rewriting (DataRow, RowDescription, Bind formats, COPY rows),
//! and redaction of errors and notices.

pub mod copy;
pub mod functions;
pub mod redact;
pub mod rows;
