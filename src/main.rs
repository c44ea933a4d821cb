fn main() -> std::process::ExitCode {
    hhi::backend::tune_allocator();
    hhi::cli::main(hhi::stages::builtin())
}
