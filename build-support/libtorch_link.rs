// Shared by the build scripts of every package whose binaries or tests run libtorch code
// (`include!`d from their build.rs; the package must depend on `torch-sys` directly).
//
// - An rpath to the libtorch folder lets the binaries and tests start from any directory with no
//   LD_LIBRARY_PATH set.
// - The linker's `--as-needed` drops libtorch_cuda.so from a binary that names no CUDA symbol,
//   which leaves CUDA unavailable at run time even on a GPU machine; naming it between
//   `--no-as-needed` and `--as-needed` keeps it in the NEEDED list (DESIGN.md, "libtorch").
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // torch-sys declares `links = "tch"` and reports its lib folder as `libtorch_lib`.
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys reported no libtorch folder; run scripts/setup.sh");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
