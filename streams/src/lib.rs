//! Ordered streams and events for taskweave (CUDA / quadrants style).
//!
//! This crate is built only on the public API of `taskweave-executor`. Streams,
//! events, `stream_parallel` and scoped streams arrive with the streams issue; until
//! then the crate is intentionally empty so the workspace layout of DESIGN.md §1 holds.
