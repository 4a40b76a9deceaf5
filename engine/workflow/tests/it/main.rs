//! The crate's integration tests: definitions, schema, the run machine, signals, fan-outs and
//! properties. One binary (STYLE.md).

mod definitions;
mod fanout;
mod harness;
mod props;
mod signals;
mod steps;
