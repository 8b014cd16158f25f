//! Loom models of taskweave's concurrent protocols live in `tests/`; they are built
//! only with `RUSTFLAGS="--cfg taskweave_loom"` (see `.ci/run`).
