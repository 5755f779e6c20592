// The root package builds two binaries: `hone-core`, the program, which links libtorch, and
// `hone`, a launcher without libtorch that checks the libtorch hone-core was built against is
// still there (and says how to fix it when it is not) before handing over to hone-core.
//
// hone-core gets what build-support/libtorch_link.rs gives every libtorch binary: an rpath to the
// libtorch folder, and libtorch_cuda.so kept in its NEEDED list despite `--as-needed` (only
// hone-core: the launcher must start without libtorch).
//
// With the `mujoco` feature hone-core also needs an rpath to the MuJoCo library, whose folder
// hone-envs reports as DEP_MUJOCO_LIB_DIR (its own rpath reaches only its own binaries).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Absolute paths of the libraries hone-core finds through its rpath, for the launcher to check.
    let mut needed: Vec<std::path::PathBuf> = Vec::new();
    if let Ok(dir) = std::env::var("DEP_MUJOCO_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        let libraries = std::fs::read_dir(&dir).into_iter().flatten().flatten();
        needed.extend(libraries.map(|entry| entry.path()).filter(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libmujoco.so"))
        }));
    }
    // torch-sys declares `links = "tch"` and reports its lib folder as `libtorch_lib`.
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys reported no libtorch folder; run scripts/setup.sh");
        return;
    };
    // The rpath goes to every target (the launcher needs no libtorch, so it never uses it; the
    // test harness of hone-core's own code does).
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    let lib = std::path::Path::new(&lib);
    needed.extend([lib.join("libtorch_cpu.so"), lib.join("libc10.so")]);
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg-bin=hone-core=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        needed.push(lib.join("libtorch_cuda.so"));
    }
    let needed: Vec<String> = needed.iter().map(|p| p.display().to_string()).collect();
    // Separated by a literal `\\n` (an env value holds no newline).
    println!("cargo:rustc-env=HONE_CORE_LIBRARIES={}", needed.join("\\n"));
}
