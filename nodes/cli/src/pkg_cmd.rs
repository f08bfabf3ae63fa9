//! `s2r pkg`, like `ros2 pkg`: where a package is and what it runs.

use anyhow::{anyhow, Result};
use clap::Subcommand;

use crate::components::{self, PACKAGE};

#[derive(Subcommand)]
pub enum PkgCmd {
    /// The executables of sim2real, one "package executable" line each (as
    /// `ros2 pkg executables` prints them): the nodes, then `s2r`.
    Executables {
        /// The package (sim2real, the only one this knows).
        #[arg(default_value = PACKAGE)]
        package: String,
    },
    /// The install prefix of a package (or the source tree when run from it).
    Prefix {
        /// The package.
        package: String,
    },
}

pub fn run(c: PkgCmd) -> Result<()> {
    match c {
        PkgCmd::Executables { package } => {
            if package != PACKAGE {
                return Err(anyhow!("package '{package}': only {PACKAGE}'s executables are known here"));
            }
            for exec in components::executables() {
                println!("{PACKAGE} {exec}");
            }
        }
        PkgCmd::Prefix { package } => {
            let found = components::find_package(&package).ok_or_else(|| anyhow!("package '{package}' not found"))?;
            println!("{}", found.prefix.display());
        }
    }
    Ok(())
}
