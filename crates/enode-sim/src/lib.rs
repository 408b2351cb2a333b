//! Enode simulator (being written).
