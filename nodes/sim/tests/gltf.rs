//! User meshes: a GLB written here (two primitives, one with a PNG texture,
//! one with a base colour, under a translated node) placed by a scenario with
//! a class of its own; it is rendered with its texture and colour, labelled
//! from its geometry (segmentation, instances, boxes, the class table), and
//! broken files are refused with the file and the problem.

use std::path::Path;

use s2r_image::Rgb;
use s2r_sim::scenario::Scenario;
use s2r_sim::sim::{Sim, SimOptions, Tick};
use serde_json::json;

/// Positions, normals, texture coordinates and indices of a triangle mesh.
type Arrays = (Vec<[f32; 3]>, Vec<[f32; 3]>, Vec<[f32; 2]>, Vec<u16>);

/// An axis-aligned box from `lo` to `hi` (glTF axes): 24 vertices with
/// outward normals and 0..1 texture coordinates per face, 36 indices.
fn cuboid(lo: [f32; 3], hi: [f32; 3]) -> Arrays {
    let (mut p, mut n, mut uv, mut idx) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for axis in 0..3 {
        for sign in [-1.0f32, 1.0] {
            let (u, w) = ((axis + 1) % 3, (axis + 2) % 3);
            let base = p.len() as u16;
            for (a, b) in [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)] {
                let mut q = [0.0; 3];
                q[axis] = if sign > 0.0 { hi[axis] } else { lo[axis] };
                q[u] = lo[u] + a * (hi[u] - lo[u]);
                q[w] = lo[w] + b * (hi[w] - lo[w]);
                p.push(q);
                let mut nn = [0.0; 3];
                nn[axis] = sign;
                n.push(nn);
                uv.push([a, b]);
            }
            // u × w = +axis: counter-clockwise from outside on the + face.
            if sign > 0.0 {
                idx.extend([base, base + 1, base + 2, base, base + 2, base + 3]);
            } else {
                idx.extend([base, base + 2, base + 1, base, base + 3, base + 2]);
            }
        }
    }
    (p, n, uv, idx)
}

/// A 2×2 checker of red and blue, 8×8 pixels, as PNG.
fn checker_png() -> Vec<u8> {
    let mut data = Vec::new();
    for y in 0..8 {
        for x in 0..8 {
            data.extend(if (x / 4 + y / 4) % 2 == 0 { [230, 20, 20] } else { [20, 20, 230] });
        }
    }
    s2r_image::encode_png(&Rgb { width: 8, height: 8, data })
}

/// A "delivery robot" 1.0 wide (glTF x), 2.0 tall (y) and 0.6 deep (z):
/// its upper half textured with the checker, its lower half green.
fn robot_glb() -> Vec<u8> {
    let mut bin: Vec<u8> = Vec::new();
    let mut views = Vec::new();
    let mut accessors = Vec::new();
    let mut push = |bin: &mut Vec<u8>, bytes: &[u8]| {
        while !bin.len().is_multiple_of(4) {
            bin.push(0);
        }
        views.push(json!({"buffer": 0, "byteOffset": bin.len(), "byteLength": bytes.len()}));
        bin.extend_from_slice(bytes);
        views.len() - 1
    };
    let f32s = |v: &[[f32; 3]]| v.iter().flatten().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut primitive = |bin: &mut Vec<u8>, lo: [f32; 3], hi: [f32; 3], textured: bool, material: usize| {
        let (p, n, uv, idx) = cuboid(lo, hi);
        let pv = push(bin, &f32s(&p));
        accessors.push(json!({"bufferView": pv, "componentType": 5126, "count": p.len(), "type": "VEC3", "min": lo, "max": hi}));
        let nv = push(bin, &f32s(&n));
        accessors.push(json!({"bufferView": nv, "componentType": 5126, "count": n.len(), "type": "VEC3"}));
        let mut attributes = json!({"POSITION": accessors.len() - 2, "NORMAL": accessors.len() - 1});
        if textured {
            let uvb: Vec<u8> = uv.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
            let tv = push(bin, &uvb);
            accessors.push(json!({"bufferView": tv, "componentType": 5126, "count": uv.len(), "type": "VEC2"}));
            attributes["TEXCOORD_0"] = json!(accessors.len() - 1);
        }
        let ib: Vec<u8> = idx.iter().flat_map(|i| i.to_le_bytes()).collect();
        let iv = push(bin, &ib);
        accessors.push(json!({"bufferView": iv, "componentType": 5123, "count": idx.len(), "type": "SCALAR"}));
        json!({"attributes": attributes, "indices": accessors.len() - 1, "material": material})
    };
    let upper = primitive(&mut bin, [-0.5, 1.0, -0.3], [0.5, 2.0, 0.3], true, 0);
    let lower = primitive(&mut bin, [-0.5, 0.0, -0.3], [0.5, 1.0, 0.3], false, 1);
    let image_view = push(&mut bin, &checker_png());
    while !bin.len().is_multiple_of(4) {
        bin.push(0);
    }
    let doc = json!({
        "asset": {"version": "2.0", "generator": "sim2real tests"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "translation": [5.0, 0.0, 0.0]}],
        "meshes": [{"name": "robot", "primitives": [upper, lower]}],
        "materials": [
            {"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}},
            {"pbrMetallicRoughness": {"baseColorFactor": [0.1, 0.8, 0.1, 1.0]}}
        ],
        "textures": [{"source": 0, "sampler": 0}],
        "samplers": [{"magFilter": 9728, "minFilter": 9728}],
        "images": [{"bufferView": image_view, "mimeType": "image/png"}],
        "buffers": [{"byteLength": bin.len()}],
        "bufferViews": views,
        "accessors": accessors,
    });
    let mut text = serde_json::to_vec(&doc).unwrap();
    while !text.len().is_multiple_of(4) {
        text.push(b' ');
    }
    let total = 12 + 8 + text.len() + 8 + bin.len();
    let mut glb = Vec::with_capacity(total);
    glb.extend_from_slice(b"glTF");
    glb.extend_from_slice(&2u32.to_le_bytes());
    glb.extend_from_slice(&(total as u32).to_le_bytes());
    glb.extend_from_slice(&(text.len() as u32).to_le_bytes());
    glb.extend_from_slice(b"JSON");
    glb.extend_from_slice(&text);
    glb.extend_from_slice(&(bin.len() as u32).to_le_bytes());
    glb.extend_from_slice(b"BIN\0");
    glb.extend_from_slice(&bin);
    glb
}

fn scenario(dir: &Path, mesh: &str) -> Result<Scenario, String> {
    let text = format!(
        "scenario: meshes\n\
         world: {{kind: road, lanes: 2, length: 200, buildings: 0}}\n\
         environment: {{time_of_day: day}}\n\
         ego: {{kind: vehicle, start: {{x: 0, y: -1.75}}, speed: 0}}\n\
         actors:\n\
         \x20 - {{type: mesh, mesh: {mesh}, class: delivery_robot, start: {{x: 8, y: -1.75, yaw: 180}}}}\n\
         \x20 - {{type: mesh, mesh: {mesh}, class: vehicle, start: {{x: 30, y: 1.75}}, size: [4, 1.8, 1.5]}}\n\
         sensors: {{cameras: [{{name: front, width: 160, height: 120, fov: 60, position: [2.4, 0, 1.0]}}]}}\n"
    );
    let path = dir.join("meshes.yaml");
    std::fs::write(&path, text).unwrap();
    Scenario::load(&path).map_err(|e| e.to_string())
}

fn next_frame(sim: &mut Sim) -> Tick {
    loop {
        let t = sim.tick().unwrap();
        if t.detections3d.is_some() {
            return t;
        }
    }
}

#[test]
fn a_glb_mesh_is_drawn_with_its_texture_and_labelled_with_its_class() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    std::fs::write(dir.path().join("assets/robot.glb"), robot_glb()).unwrap();
    let s = scenario(dir.path(), "assets/robot.glb").unwrap();
    // One file placed twice is read once.
    assert_eq!(s.meshes().len(), 1);
    let m = &s.meshes()[0];
    // glTF y up, z forward -> the simulator's z up, x forward: 0.6 long, 1.0 wide, 2.0 tall.
    assert_eq!(m.size, [0.6, 1.0, 2.0]);
    assert_eq!(m.textures.len(), 1);
    assert_eq!(m.vertices.len(), 2 * 36);

    s2r_sim::render::quiet_headless_vulkan();
    let mut sim = Sim::new(s, &SimOptions { seed: 0, image_scale: 1.0, render: true }).unwrap_or_else(|e| panic!("{e}"));
    let info = sim.scenario_info();
    // A new class is appended to the table; a known one keeps its id.
    let robot_class = info.class_names.iter().position(|c| c == "delivery_robot").expect("the class table has the new class");
    assert_eq!(robot_class, s2r_sim::world::CLASS_NAMES.len());
    let robot = info.actors.iter().find(|a| a.class_name == "delivery_robot").expect("the robot is an actor");
    assert!((robot.size.z - 2.0).abs() < 1e-4 && (robot.size.x - 0.6).abs() < 1e-4, "{:?}", robot.size);
    let car = info.actors.iter().find(|a| a.class_name == "vehicle").expect("the mesh labelled vehicle");
    assert!((car.size.x - 4.0).abs() < 1e-4, "a size given stretches the mesh: {:?}", car.size);

    let f = next_frame(&mut sim).cameras.remove(0);
    let (w, h) = (f.image.width as usize, f.image.height as usize);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts/sim/gltf");
    std::fs::create_dir_all(&out).unwrap();
    s2r_image::write_png(&out.join("front.png"), &Rgb { width: w, height: h, data: f.image.data.to_vec() }).unwrap();

    let inst: Vec<u16> = f.instances.data.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
    let mask: Vec<usize> = (0..w * h).filter(|&i| inst[i] == robot.instance_id).collect();
    assert!(mask.len() > 500, "the robot covers {} pixels", mask.len());
    assert!(mask.iter().all(|&i| f.segmentation.data[i] as usize == robot_class), "its pixels carry its class");
    // Its box is tight around its mask and carries the class name.
    let det = f.detections.detections.iter().find(|d| d.id == robot.instance_id.to_string()).expect("a detection of the robot");
    assert_eq!(det.results[0].hypothesis.class_id, "delivery_robot");
    let (x0, x1) = (mask.iter().map(|i| i % w).min().unwrap(), mask.iter().map(|i| i % w).max().unwrap());
    assert!((det.bbox.size_x - (x1 - x0 + 1) as f64).abs() < 1e-9);
    // Fully in view and unoccluded: the silhouette from its geometry is its mask.
    assert!(det.results[0].hypothesis.score > 0.9, "visible fraction {}", det.results[0].hypothesis.score);
    // Depth: its front face (x 8 - 0.3) seen from the camera 2.4 m ahead of base_link.
    let depth: Vec<f32> = f.depth.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let nearest = mask.iter().map(|&i| depth[i]).fold(f32::INFINITY, f32::min);
    let expected = 8.0 - 0.3 - 2.4 - sim.base_pose().translation.x;
    assert!((nearest - expected).abs() < 0.05, "nearest depth {nearest}, expected {expected}");

    // Colours: the texture's red and blue above, the material's green below.
    let px = |i: usize| [f.image.data[3 * i], f.image.data[3 * i + 1], f.image.data[3 * i + 2]];
    let (mut red, mut blue, mut green) = (0, 0, 0);
    for &i in &mask {
        let [r, g, b] = px(i).map(|c| c as i32);
        if r > g + 40 && r > b + 40 {
            red += 1;
        } else if b > r + 40 && b > g + 40 {
            blue += 1;
        } else if g > r + 40 && g > b + 40 {
            green += 1;
        }
    }
    assert!(red > 50 && blue > 50 && green > 100, "red {red}, blue {blue}, green {green} of {}", mask.len());
    let rows = |pred: &dyn Fn([u8; 3]) -> bool| {
        let ys: Vec<usize> = mask.iter().filter(|&&i| pred(px(i))).map(|i| i / w).collect();
        ys.iter().sum::<usize>() as f64 / ys.len().max(1) as f64
    };
    let textured_row = rows(&|[r, g, b]| (r as i32 - g as i32) > 40 || (b as i32 - g as i32) > 40);
    let green_row = rows(&|[r, g, b]| g as i32 > r as i32 + 40 && g as i32 > b as i32 + 40);
    assert!(textured_row < green_row, "the textured half is above the green one ({textured_row} vs {green_row})");
}

#[test]
fn missing_and_broken_meshes_are_refused_with_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let err = scenario(dir.path(), "nowhere.glb").unwrap_err();
    assert!(err.contains("meshes.yaml:6: 'actors[0].mesh'") && err.contains("nowhere.glb: no such file"), "{err}");

    std::fs::write(dir.path().join("junk.glb"), b"glTF\x02\0\0\0not really").unwrap();
    let err = scenario(dir.path(), "junk.glb").unwrap_err();
    assert!(err.contains("junk.glb: not a readable glTF 2.0 / GLB file"), "{err}");

    // Cut short: the binary chunk is missing.
    let glb = robot_glb();
    std::fs::write(dir.path().join("cut.glb"), &glb[..glb.len() / 2]).unwrap();
    let err = scenario(dir.path(), "cut.glb").unwrap_err();
    assert!(err.contains("cut.glb: not a readable glTF 2.0 / GLB file"), "{err}");

    // A class that is not a name.
    std::fs::write(dir.path().join("robot.glb"), glb).unwrap();
    let text = std::fs::read_to_string(dir.path().join("meshes.yaml")).unwrap().replace("cut.glb", "robot.glb");
    std::fs::write(dir.path().join("bad.yaml"), text.replace("class: delivery_robot", "class: Delivery Robot")).unwrap();
    let err = Scenario::load(&dir.path().join("bad.yaml")).unwrap_err().to_string();
    assert!(err.contains("'actors[0].class': 'Delivery Robot' is not a class name"), "{err}");
}
