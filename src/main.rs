//! The `audiostudio` binary: everything happens in the library's CLI.

fn main() -> std::process::ExitCode {
    audiostudio::cli::main()
}
