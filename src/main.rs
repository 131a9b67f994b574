//! The `xianjie` binary: parses the command line, runs the command, maps errors to exit codes.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: ingest allocates and frees many small strings on
/// several threads at once, where glibc's allocator spent a third of the CPU time (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    xianjie::cli::main()
}
