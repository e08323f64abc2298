//! kv-server integration tests: in-process clusters over real gRPC on
//! loopback (`inproc`).

mod inproc;
