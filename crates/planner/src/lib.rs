//! Pure planning core (being written).
