include!("../build-support/libtorch_link.rs");
