//! Entry points for the loom models in `loom-tests/` (built only with
//! `--cfg taskweave_loom`): the real ordering code — lanes, events, fork/join, the
//! scoped-stream protocol — generic over the [`Backend`], so a model can run it on
//! the executor's bare `Graph` from several loom threads.

pub use crate::backend::Backend;
pub use crate::event::{EventCell, Recorded};
pub use crate::lane::{Deps, Lane, LaunchPoll, Reservation, Snapshot, Submitted};
pub use crate::parallel::{ForkPoint, join_into};
pub use crate::scoped::{AsLane, scoped};
