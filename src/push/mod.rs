//! Pushing supervision data to the provincial platform (DESIGN §8): the working-day calendar of
//! statutory deadlines, the package and receipt formats, the HTTPS client, the delivery worker,
//! and the platform's side — a strict package validator and the simulator (`province-sim`).

pub mod calendar;
pub mod client;
pub mod package;
pub mod receipt;
pub mod sim;
pub mod validate;
pub mod worker;
