//! Tests of ledger (being written).
