//! Analysis cache keyed by normalized statement text, so a repeated query shape costs a hash lookup.
