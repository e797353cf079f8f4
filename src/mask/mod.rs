//! Masking: the mask functions, DataRow and RowDescription rewriting, and COPY row rewriting.

pub mod copy;
pub mod functions;
