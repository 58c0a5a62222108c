//! Tests of analytics (being written).
