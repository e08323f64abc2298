//! Integration tests of geo-bench, one binary: `cargo test -p geo-bench --test it`.

mod bench;
mod wan;
mod wan_check;
