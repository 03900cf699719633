//! The `cachalot` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    cachalot::cli::main()
}
