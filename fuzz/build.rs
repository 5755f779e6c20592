// The fuzz targets run libtorch code: an rpath to libtorch (build-support/libtorch_link.rs).
include!("../build-support/libtorch_link.rs");
