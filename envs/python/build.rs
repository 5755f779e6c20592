// With the `mujoco` feature the module links the MuJoCo library, whose folder hone-envs reports as
// DEP_MUJOCO_LIB_DIR (its own rpath reaches only its own binaries). An rpath to that folder (the
// mujoco wheel's, in the Python environment scripts/setup.sh made) lets Python load the module;
// the wheel does not bundle the library (scripts/setup_python.sh builds it with
// `--auditwheel skip`).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if let Ok(dir) = std::env::var("DEP_MUJOCO_LIB_DIR") {
        println!("cargo:rustc-link-arg-cdylib=-Wl,-rpath,{dir}");
    }
}
