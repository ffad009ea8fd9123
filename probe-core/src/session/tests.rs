//! Session tests
