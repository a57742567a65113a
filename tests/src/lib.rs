//! Whole-system tests of Sliver live in `tests/tests/`: the shipped run specs,
//! and (as the network parts land) the local chain, storage, miners and
//! validator run together. This library is empty; it exists so the tests
//! have a package to belong to.
