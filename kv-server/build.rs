//! Generates the etcd KV client kv-bench uses (`proto/etcd_kv.proto`),
//! with the protoc of `protoc-bin-vendored`, set for this build script only
//! (see client-sdk/build.rs and shared/docs/BUILD.md on why not globally).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: a build script is single-threaded here; the variable only
    // affects this process (prost-build reads it to find protoc).
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_protos(&["proto/etcd_kv.proto"], &["proto"])?;
    Ok(())
}
