//! Typed inputs of dataflow tasks (HPX `dataflow`): handles whose outputs a consumer
//! receives once they have completed.

use crate::error::TaskError;
use crate::handle::{SharedTask, Task};
use crate::task::TaskId;

/// Something a dataflow task can take as input: one handle, or a tuple, array or
/// `Vec` of them. The consumer depends on every task named, and its body receives the
/// values in the same shape.
///
/// If any input fails, the consumer fails with
/// [`TaskError::DependencyFailed`] and its body does not run.
pub trait Inputs: Send + 'static {
    /// The values the consumer's body receives.
    type Values: Send + 'static;

    /// Calls `f` with the id of every task these inputs name.
    fn for_each_id(&self, f: &mut dyn FnMut(TaskId));

    /// Takes the values; called only after every named task has completed.
    #[doc(hidden)]
    fn take_values(self) -> Result<Self::Values, TaskError>;
}

impl<T: Send + 'static> Inputs for Task<T> {
    type Values = T;

    fn for_each_id(&self, f: &mut dyn FnMut(TaskId)) {
        f(self.id());
    }

    fn take_values(self) -> Result<T, TaskError> {
        self.take_finished()
    }
}

impl<T: Clone + Send + Sync + 'static> Inputs for SharedTask<T> {
    type Values = T;

    fn for_each_id(&self, f: &mut dyn FnMut(TaskId)) {
        f(self.id());
    }

    fn take_values(self) -> Result<T, TaskError> {
        self.take_finished()
    }
}

impl<I: Inputs> Inputs for Vec<I> {
    type Values = Vec<I::Values>;

    fn for_each_id(&self, f: &mut dyn FnMut(TaskId)) {
        for input in self {
            input.for_each_id(f);
        }
    }

    fn take_values(self) -> Result<Self::Values, TaskError> {
        self.into_iter().map(Inputs::take_values).collect()
    }
}

impl<I: Inputs, const N: usize> Inputs for [I; N] {
    type Values = [I::Values; N];

    fn for_each_id(&self, f: &mut dyn FnMut(TaskId)) {
        for input in self {
            input.for_each_id(f);
        }
    }

    fn take_values(self) -> Result<Self::Values, TaskError> {
        let mut error = None;
        let values = self.map(|input| match input.take_values() {
            Ok(value) => Some(value),
            Err(e) => {
                error.get_or_insert(e);
                None
            }
        });
        match error {
            Some(e) => Err(e),
            None => Ok(values.map(|v| v.expect("no error means every value is present"))),
        }
    }
}

macro_rules! tuple_inputs {
    ($($name:ident),+) => {
        impl<$($name: Inputs),+> Inputs for ($($name,)+) {
            type Values = ($($name::Values,)+);

            #[allow(non_snake_case)]
            fn for_each_id(&self, f: &mut dyn FnMut(TaskId)) {
                let ($($name,)+) = self;
                $($name.for_each_id(f);)+
            }

            #[allow(non_snake_case)]
            fn take_values(self) -> Result<Self::Values, TaskError> {
                let ($($name,)+) = self;
                Ok(($($name.take_values()?,)+))
            }
        }
    };
}

tuple_inputs!(A);
tuple_inputs!(A, B);
tuple_inputs!(A, B, C);
tuple_inputs!(A, B, C, D);
tuple_inputs!(A, B, C, D, E);
tuple_inputs!(A, B, C, D, E, F);
tuple_inputs!(A, B, C, D, E, F, G);
tuple_inputs!(A, B, C, D, E, F, G, H);
