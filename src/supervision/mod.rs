//! Supervision of the link between administrative enforcement and criminal justice (两法衔接):
//! the rules that recognise a case meeting a criminal prosecution threshold ([`rules`]) and the
//! 310号令 transfer deadlines ([`deadlines`]), the leads they raise ([`leads`]), and the
//! procuratorate's workbench: its actions and the units' answers ([`actions`]), timelines, transfers
//! and the search across ports ([`workbench`]).

pub mod actions;
pub mod deadlines;
pub mod leads;
pub mod notice;
pub mod rules;
pub mod workbench;

pub use rules::{Matched, Rule, RuleError, load_dir, run_golden};

/// Where `xianjie rules check` looks when no directory is given: `./rules`, like `./adapters`.
pub const DEFAULT_RULES_DIR: &str = "rules";
