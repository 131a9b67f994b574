//! The `xianjie` binary: parses the command line, runs the command, maps errors to exit codes.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: ingest allocates and frees many small strings on
/// several threads at once, where glibc's allocator spent a third of the CPU time (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc options read from the environment when the process starts. Returning freed memory to
/// the OS at once (instead of after 10 ms) keeps a busy gateway's RSS near what it uses: under the
/// port API benchmark, 365 MiB instead of 2.4 GiB, at the same throughput (BENCHMARKS.md).
const ALLOCATOR_ENV: [(&str, &str); 2] = [
    ("MIMALLOC_PURGE_DELAY", "0"),
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
];

fn main() -> ExitCode {
    // The options can only be given before the allocator starts, and setting the environment of
    // a running process is unsafe, so the first start re-executes itself with them (once: the
    // second start finds them set). An operator's own values are kept.
    if ALLOCATOR_ENV
        .iter()
        .any(|(k, _)| std::env::var_os(k).is_none())
        && let Ok(exe) = std::env::current_exe()
    {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(exe);
        cmd.args(std::env::args_os().skip(1));
        for (k, v) in ALLOCATOR_ENV {
            if std::env::var_os(k).is_none() {
                cmd.env(k, v);
            }
        }
        // `exec` only returns on failure; then run as we are.
        let _ = cmd.exec();
    }
    xianjie::cli::main()
}
