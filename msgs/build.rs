//! Generates the Rust message and service types from `<package>/msg/<Type>.msg`
//! and `<package>/srv/<Type>.srv` in this folder.

use std::fs;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed={}", root.display());
    let mut reg = s2r_idl::Registry::new();
    let mut packages: Vec<_> = fs::read_dir(root).expect("read msgs/").flatten().map(|e| e.path()).collect();
    packages.sort();
    for pkg_dir in packages {
        let package = pkg_dir.file_name().unwrap().to_str().unwrap().to_string();
        for kind in ["msg", "srv"] {
            let dir = pkg_dir.join(kind);
            if !dir.is_dir() {
                continue;
            }
            println!("cargo:rerun-if-changed={}", dir.display());
            let mut files: Vec<_> = fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
            files.sort();
            for file in files {
                if file.extension().and_then(|e| e.to_str()) != Some(kind) {
                    continue;
                }
                println!("cargo:rerun-if-changed={}", file.display());
                let name = file.file_stem().unwrap().to_str().unwrap();
                let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                let added = match kind {
                    "msg" => reg.add_msg(&package, name, &text).map(drop),
                    _ => reg.add_srv(&package, name, &text).map(drop),
                };
                if let Err(e) = added {
                    panic!("{}: {e}", file.display());
                }
            }
        }
    }
    let code = s2r_idl::codegen::generate(&reg).unwrap_or_else(|e| panic!("msgs/: {e}"));
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("generated.rs");
    fs::write(out, code).unwrap();
}
