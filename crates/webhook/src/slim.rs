//! The AdmissionReview as `/mutate` reads it: [`sts_model::review`] (a borrowed view of the
//! request body, pure parsing), re-exported under the name the handlers use.

pub use sts_model::review::*;
