// Without the `mujoco` and `atari` features hone-envs has no native code and this does nothing.
//
// With `mujoco`: the MuJoCo library, headers and gymnasium's model files come from hone's Python
// environment, whose paths scripts/setup.sh writes into .cargo/config.toml (HONE_MUJOCO_LIB,
// HONE_MUJOCO_INCLUDE, HONE_MUJOCO_ASSETS). The shim (src/mujoco/shim.c) is compiled against the
// headers; the library is linked by its file name (the wheel ships libmujoco.so.X.Y.Z and no
// unversioned link) with an rpath to its folder, so hone-envs' tests, benches and examples run
// from anywhere with no LD_LIBRARY_PATH. Binaries of other packages need the same rpath: they get
// the folder as DEP_MUJOCO_LIB_DIR (this package `links = "mujoco"`).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "mujoco")]
    mujoco::build();
    #[cfg(feature = "atari")]
    atari::build();
}

// With the `atari` feature: ALE's static library and headers, which scripts/setup.sh compiles from
// the ale-py sdist into HONE_ALE_DIR (lib/libale.a, include/ale/...), and its ROM folder
// HONE_ALE_ROMS, which the crate reads at run time (src/atari/mod.rs). The C++ shim
// (src/atari/shim.cpp) is compiled against the headers; the library is static, so no rpath.
/// The path in the environment variable `name` (what `feature` needs: `what`), which
/// scripts/setup.sh writes into .cargo/config.toml; a clear panic when it is unset or missing.
#[cfg(any(feature = "mujoco", feature = "atari"))]
fn path_from_env(feature: &str, name: &str, what: &str) -> std::path::PathBuf {
    println!("cargo:rerun-if-env-changed={name}");
    let Some(value) = std::env::var_os(name) else {
        panic!(
            "hone-envs' `{feature}` feature needs {name} ({what}); run `bash scripts/setup.sh`, \
             which writes it into .cargo/config.toml"
        );
    };
    let path = std::path::PathBuf::from(value);
    assert!(
        path.exists(),
        "{name} = {} ({what}) does not exist; run `bash scripts/setup.sh` again",
        path.display()
    );
    path
}

#[cfg(feature = "atari")]
mod atari {
    use super::path_from_env;

    pub fn build() {
        let ale = path_from_env("atari", "HONE_ALE_DIR", "ALE's library and headers");
        let roms = path_from_env("atari", "HONE_ALE_ROMS", "the Atari ROMs");
        let library = ale.join("lib/libale.a");
        assert!(
            library.is_file(),
            "{} is missing; run `bash scripts/setup.sh` again",
            library.display()
        );
        println!("cargo:rerun-if-changed={}", library.display());

        println!("cargo:rerun-if-changed=src/atari/shim.cpp");
        cc::Build::new()
            .cpp(true)
            .file("src/atari/shim.cpp")
            // A system include: ALE's headers' own warnings are not the shim's.
            .flag("-isystem")
            .flag(ale.join("include").display().to_string())
            .flag("-std=c++17")
            .warnings(true)
            // The C++ runtime is linked below, after libale.a, which needs it too.
            .cpp_link_stdlib(None)
            .compile("hone_atari_shim");

        println!(
            "cargo:rustc-link-search=native={}",
            ale.join("lib").display()
        );
        println!("cargo:rustc-link-lib=static=ale");
        println!("cargo:rustc-link-lib=dylib=stdc++");
        println!("cargo:rustc-link-lib=dylib=z");
        println!("cargo:rustc-env=HONE_ALE_ROMS={}", roms.display());
    }
}

#[cfg(feature = "mujoco")]
mod mujoco {
    use std::path::Path;

    use super::path_from_env;

    /// The model files of the ten tasks, as gymnasium's v5 envs name them.
    const MODEL_FILES: [&str; 10] = [
        "ant.xml",
        "half_cheetah.xml",
        "hopper.xml",
        "walker2d_v5.xml",
        "humanoid.xml",
        "swimmer.xml",
        "reacher.xml",
        "pusher_v5.xml",
        "inverted_pendulum.xml",
        "inverted_double_pendulum.xml",
    ];

    pub fn build() {
        let library = path_from_env("mujoco", "HONE_MUJOCO_LIB", "the MuJoCo shared library");
        let include = path_from_env("mujoco", "HONE_MUJOCO_INCLUDE", "the MuJoCo headers");
        let assets = path_from_env(
            "mujoco",
            "HONE_MUJOCO_ASSETS",
            "gymnasium's MuJoCo model files",
        );

        println!("cargo:rerun-if-changed=src/mujoco/shim.c");
        cc::Build::new()
            .file("src/mujoco/shim.c")
            .include(&include)
            .flag_if_supported("-std=c11")
            .warnings(true)
            .compile("hone_mujoco_shim");

        let lib_dir = library.parent().unwrap_or(Path::new("/"));
        let lib_file = library
            .file_name()
            .and_then(|name| name.to_str())
            .expect("HONE_MUJOCO_LIB names a file");
        println!("cargo:rustc-link-search=native={}", lib_dir.display());
        println!("cargo:rustc-link-lib=dylib:+verbatim={lib_file}");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
        println!("cargo:lib_dir={}", lib_dir.display());

        for file in MODEL_FILES {
            let path = assets.join(file);
            assert!(
                path.is_file(),
                "{} is missing: HONE_MUJOCO_ASSETS should be gymnasium's envs/mujoco/assets",
                path.display()
            );
            println!("cargo:rerun-if-changed={}", path.display());
        }
        // The models are compiled into the binary (include_bytes!), so a run needs only the library.
        println!("cargo:rustc-env=HONE_MUJOCO_ASSETS={}", assets.display());
    }
}
