//! Pushing supervision data to the provincial platform (DESIGN §8; issue 5, being built): so far
//! the working-day calendar that statutory deadlines are counted in.

pub mod calendar;
pub mod client;
pub mod package;
pub mod receipt;
pub mod sim;
pub mod validate;
pub mod worker;
