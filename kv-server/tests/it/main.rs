//! kv-server integration tests: in-process clusters over real gRPC on
//! loopback (`inproc`), and clusters of `kv-server` processes (`cluster`)
//! driven by recording clients (`workload`).

mod cluster;
mod inproc;
mod workload;
