//! Reads, writes, signs and verifies snapd's assertions.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
