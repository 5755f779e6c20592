// hone-trainer's tests run libtorch code: build-support/libtorch_link.rs gives them an rpath to
// libtorch. With the `mujoco` feature they run MuJoCo too, whose folder hone-envs reports as
// DEP_MUJOCO_LIB_DIR (its own rpath reaches only its own binaries): an rpath to it as well.
mod libtorch_link {
    include!("../build-support/libtorch_link.rs");

    pub(super) fn run() {
        main();
    }
}

fn main() {
    if let Ok(dir) = std::env::var("DEP_MUJOCO_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    libtorch_link::run();
}
