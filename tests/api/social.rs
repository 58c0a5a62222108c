//! Tests of social (being written).
