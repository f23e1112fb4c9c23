//! Integration tests for Faultline live in `tests/`.
