//! The `coreforge` command line.
fn main() {}
