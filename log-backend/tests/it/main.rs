//! Integration tests of log-backend, in one binary (each test binary links
//! the whole RocksDB archive).

mod bad_input;
mod common;
mod contract;
mod crash;
mod memory;
mod rocks;
mod tango;
mod tango_prop;
