//! The element types a tensor can hold.

use std::fmt::Debug;

mod sealed {
    pub trait Sealed {}
}

/// A plain element type of a [`Tensor`](crate::Tensor): `f32`, `f64`, the signed and
/// unsigned integers of 8 to 64 bits, `isize` and `usize`.
///
/// Elements are `Copy` plain data with no drop glue and no interior mutability, and
/// every bit pattern the runtime writes is one of their values (zero, or values a
/// task stored), so a view may hand out `&T` and `&mut T` to them freely. The trait
/// is sealed.
pub trait Element:
    sealed::Sealed + Copy + Default + PartialEq + Debug + Send + Sync + 'static
{
    /// The type's name, as shown in errors and graph exports (`"f64"`).
    const NAME: &'static str;
}

macro_rules! elements {
    ($($t:ty),*) => {
        $(
            impl sealed::Sealed for $t {}
            impl Element for $t {
                const NAME: &'static str = stringify!($t);
            }
        )*
    };
}

elements!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64, isize, usize);
