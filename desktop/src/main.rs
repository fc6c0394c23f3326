//! `mailsite-helper`: the command-line face of the helper's core. A GUI face will be
//! another subcommand over the same library; nothing here does more than read
//! arguments, call the core and print.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
