fn main() -> std::process::ExitCode {
    hhi::cli::main(hhi::stages::builtin())
}
