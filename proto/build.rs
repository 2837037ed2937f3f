//! Compiles the .proto contract with protox (pure Rust), so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=kb");
    let fds = protox::compile(["kb/v1/kb.proto"], ["."])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
