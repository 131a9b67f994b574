//! The `xianjie` binary: parses the command line, runs the command, maps errors to exit codes.

use std::process::ExitCode;

fn main() -> ExitCode {
    xianjie::cli::main()
}
