//! Integration tests against a real Postgres started by the harness, with real clients.

mod harness;
mod raw;

mod audit_accuracy;
mod catalog_refresh;
mod clients;
mod dba;
mod dba_clock;
mod dba_code;
mod dba_order;
mod dba_rows;
mod dba_spelling;
mod dba_writes;
mod differential;
mod fence;
mod hardening;
mod leaks;
mod locks;
mod operations;
mod policy;
mod portals;
mod prepared;
mod printed_masks;
mod protocol_attacks;
mod proxy_core;
mod sqlgen;
mod subscripts;
mod tls;
mod tools;
