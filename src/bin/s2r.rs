//! The `s2r` command (see the `s2r-cli` crate).
fn main() {
    s2r_cli::main()
}
