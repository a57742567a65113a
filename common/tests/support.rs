//! Shared fixtures, from `sliver_common::testing`.

pub use sliver_common::testing::{real_text, small_corpus, tiny_spec};
