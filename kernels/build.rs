// Links the tests and benches against libtorch (the shared build-support file) and compiles the
// C++ autograd functions behind `token_logprobs` and `token_entropy`: tch has no way to define a
// custom backward from Rust, and the chunked backward is what keeps their memory O(chunk × V);
// and the fused Adam step behind `adam_step`, which tch does not bind.
fn main() {
    link_libtorch();
    for file in ["cxx/token_autograd.cpp", "cxx/adam.cpp", "cxx/guarded.h"] {
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!(
            "torch-sys reported no libtorch folder (DEP_TCH_LIBTORCH_LIB); run scripts/setup.sh"
        );
    };
    // Both the libtorch zip and the pip wheel keep the headers beside the lib folder.
    let root = std::path::Path::new(&lib).join("..");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("cxx/token_autograd.cpp")
        .file("cxx/adam.cpp")
        .compile("hone_token_autograd");
}

fn link_libtorch() {
    libtorch_link::link();
}

mod libtorch_link {
    include!("../build-support/libtorch_link.rs");

    pub(super) fn link() {
        main();
    }
}
