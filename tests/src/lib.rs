//! Whole-system tests of Sliver live in `tests/tests/`: the shipped run specs, and the swarm
//! (local chain, storage, miners and validator as processes). This library is empty; it exists
//! so the tests have a package to belong to.
