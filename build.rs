// libtorch's link settings are shared with the other packages; the `mujoco` feature adds an
// rpath to the MuJoCo library, which hone-envs reports as DEP_MUJOCO_LIB_DIR (its own rpath
// reaches only its own binaries), so `hone` starts with no LD_LIBRARY_PATH.
mod libtorch_link {
    include!("build-support/libtorch_link.rs");

    pub(crate) fn link() {
        main();
    }
}

fn main() {
    libtorch_link::link();
    println!("cargo:rerun-if-env-changed=DEP_MUJOCO_LIB_DIR");
    if let Ok(dir) = std::env::var("DEP_MUJOCO_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
