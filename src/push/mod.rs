//! Pushing supervision data to the provincial platform (DESIGN §8): the working-day calendar of
//! statutory deadlines, the package and receipt formats, the HTTPS client, the delivery worker,
//! and the platform's side — a strict package validator and the simulator (`province-sim`).

pub mod calendar;
pub mod client;
pub mod package;
pub mod worker;

// The platform's side is crate `xianjie-sim` (a tool of its own, which the package builder
// also uses to hold back records the platform would refuse).
pub use xianjie_sim as sim;
pub use xianjie_sim::{receipt, validate};

#[cfg(test)]
mod tests;
