//! What the `engine` command line runs, one module per group of docker's
//! commands; each prints what docker prints and returns errors to `main`.

pub mod images;
pub mod prune;
