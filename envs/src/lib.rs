//! hone-envs: an envpool-style engine — worker threads, contiguous batch buffers — and gymnasium-exact environments.
