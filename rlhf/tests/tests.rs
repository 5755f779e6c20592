//! Integration tests of hone-rlhf (one binary, modules by topic).

mod algorithms;
mod checkpoints;
mod common;
mod parity;
mod smollm2;
