//! The `taprec` command line.
fn main() {}
