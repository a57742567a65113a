//! Shared fixtures for Sliver's whole-system tests.
