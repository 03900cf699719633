//! The `cachalot` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    cachalot::cli::main()
}

/// jemalloc, with background threads that return freed memory to the
/// system (see bench/burst).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
