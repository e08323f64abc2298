//! Generates the gRPC code for `proto/gryff/v1/*.proto` (client and server
//! stubs; kv-server implements the services). Uses the protoc shipped in the
//! `protoc-bin-vendored` crate so nothing needs installing; PROTOC is set for
//! this build script only, never globally (raft-proto elsewhere in the
//! workspace rejects this protoc: see shared/docs/BUILD.md).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: a build script is single-threaded at this point; the variable
    // only affects this process (prost-build reads it to find protoc).
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &["proto/gryff/v1/kv.proto", "proto/gryff/v1/peer.proto"],
            &["proto"],
        )?;
    Ok(())
}
