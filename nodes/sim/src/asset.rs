//! User meshes: glTF 2.0 (`.gltf` with its buffers and images, or one `.glb`)
//! placed by a scenario as actors or props with a class of their own.
//!
//! A mesh is read once when its scenario is loaded: every triangle primitive
//! of the file's default scene (its nodes' transforms applied), with normals
//! (computed per face where the file has none), the first texture
//! coordinates, vertex colours and its material's base colour factor and base
//! colour texture. It is turned from glTF's axes (y up, front facing +z) into
//! the simulator's (z up, x forward, y left), centred on its bounding box and
//! scaled to a unit box, so that an object draws it at any size, as it draws
//! its box parts. Textures are resampled to [`TEXTURE_SIZE`]² RGBA and used as
//! the file stores them (sRGB), like every other colour of the flat look.

use std::path::{Path, PathBuf};

use nalgebra::{Matrix4, Point3, Vector3};

/// Side in texels every base-colour texture is resampled to.
pub const TEXTURE_SIZE: u32 = 256;

/// Triangles kept for a mesh's outline (the silhouette the visible fraction
/// of its detections divides by); a longer mesh is sampled evenly.
const OUTLINE_TRIANGLES: usize = 512;

/// A mesh that cannot be used: the file and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {reason}", .file.display())]
pub struct AssetError {
    /// The glTF or GLB file.
    pub file: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// One corner of a mesh triangle, in the unit box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeshVertex {
    /// Within [−0.5, 0.5] on each axis: x forward, y left, z up.
    pub position: [f32; 3],
    /// Unit normal in the unit box's frame (see [`MeshAsset`] for scaling).
    pub normal: [f32; 3],
    /// Texture coordinates (glTF's TEXCOORD_0; 0 without a texture).
    pub uv: [f32; 2],
    /// The material's base colour factor times the vertex colour, RGBA.
    pub color: [f32; 4],
    /// Layer of the texture in [`MeshAsset::textures`] + 1; 0: untextured.
    pub texture: u32,
}

/// A glTF mesh as the renderer draws it: a triangle list in the unit box.
#[derive(Debug, Clone, PartialEq)]
pub struct MeshAsset {
    /// Where it was read from.
    pub file: PathBuf,
    /// Three per triangle, counter-clockwise seen from outside.
    pub vertices: Vec<MeshVertex>,
    /// Base-colour textures, [`TEXTURE_SIZE`]² RGBA8 each, row-major.
    pub textures: Vec<Vec<u8>>,
    /// Length (x), width (y), height (z) of its bounding box in the file's
    /// units (metres): the size it has when the scenario gives none.
    pub size: [f32; 3],
    /// Corners of the triangles kept for its outline, unit box, three per triangle.
    pub outline: Vec<Point3<f32>>,
}

impl MeshAsset {
    /// Reads a `.gltf` or `.glb` file.
    pub fn load(file: &Path) -> Result<MeshAsset, AssetError> {
        let err = |reason: String| AssetError { file: file.into(), reason };
        if !file.is_file() {
            return Err(err("no such file".into()));
        }
        let (doc, buffers, images) = gltf::import(file).map_err(|e| err(format!("not a readable glTF 2.0 / GLB file: {e}")))?;
        let scene = doc.default_scene().or_else(|| doc.scenes().next()).ok_or_else(|| err("the file has no scene".into()))?;
        let mut raw = Raw::default();
        let mut layers: Vec<Option<u32>> = vec![None; images.len()];
        let mut textures = Vec::new();
        let mut stack: Vec<(gltf::Node, Matrix4<f32>)> = scene.nodes().map(|n| (n, Matrix4::identity())).collect();
        while let Some((node, parent)) = stack.pop() {
            let m = parent * Matrix4::from(node.transform().matrix());
            if let Some(mesh) = node.mesh() {
                for prim in mesh.primitives() {
                    if prim.mode() != gltf::mesh::Mode::Triangles {
                        continue;
                    }
                    let texture = match prim.material().pbr_metallic_roughness().base_color_texture() {
                        Some(info) if info.tex_coord() == 0 => {
                            let image = info.texture().source().index();
                            let data = images.get(image).ok_or_else(|| err(format!("texture image {image} is missing")))?;
                            match layers[image] {
                                Some(l) => l,
                                None => {
                                    textures.push(resample(data).map_err(|r| err(format!("texture image {image}: {r}")))?);
                                    let l = textures.len() as u32;
                                    layers[image] = Some(l);
                                    l
                                }
                            }
                        }
                        _ => 0,
                    };
                    raw.add(&prim, &buffers, &m, texture).map_err(|r| err(format!("mesh '{}': {r}", mesh.name().unwrap_or("?"))))?;
                }
            }
            stack.extend(node.children().map(|c| (c, m)));
        }
        if raw.vertices.is_empty() {
            return Err(err("the default scene has no triangle meshes".into()));
        }
        Ok(raw.finish(file, textures))
    }
}

/// Vertices as read, in the simulator's axes and the file's units.
#[derive(Default)]
struct Raw {
    vertices: Vec<MeshVertex>,
}

/// glTF (x left of an asset facing +z, y up, z forward) to the simulator's
/// axes (x forward, y left, z up): a rotation.
fn to_sim(v: Vector3<f32>) -> [f32; 3] {
    [v.z, v.x, v.y]
}

impl Raw {
    fn add(&mut self, prim: &gltf::Primitive, buffers: &[gltf::buffer::Data], m: &Matrix4<f32>, texture: u32) -> Result<(), String> {
        let reader = prim.reader(|b| buffers.get(b.index()).map(|d| &d.0[..]));
        let positions: Vec<[f32; 3]> = reader.read_positions().ok_or("a primitive has no POSITION")?.collect();
        let normals: Option<Vec<[f32; 3]>> = reader.read_normals().map(|n| n.collect());
        let uvs: Option<Vec<[f32; 2]>> = reader.read_tex_coords(0).map(|t| t.into_f32().collect());
        let colors: Option<Vec<[f32; 4]>> = reader.read_colors(0).map(|c| c.into_rgba_f32().collect());
        let indices: Vec<u32> = match reader.read_indices() {
            Some(i) => i.into_u32().collect(),
            None => (0..positions.len() as u32).collect(),
        };
        if !indices.len().is_multiple_of(3) {
            return Err(format!("{} indices is not a whole number of triangles", indices.len()));
        }
        let factor = prim.material().pbr_metallic_roughness().base_color_factor();
        let normal_m = m.fixed_view::<3, 3>(0, 0).try_inverse().map(|i| i.transpose()).unwrap_or_else(nalgebra::Matrix3::identity);
        // A transform that mirrors turns the winding around.
        let mirrored = m.fixed_view::<3, 3>(0, 0).determinant() < 0.0;
        for tri in indices.chunks_exact(3) {
            let mut corners = [0usize; 3];
            for (c, &i) in corners.iter_mut().zip(tri) {
                let i = i as usize;
                if i >= positions.len() {
                    return Err(format!("index {i} is past its {} vertices", positions.len()));
                }
                *c = i;
            }
            if mirrored {
                corners.swap(1, 2);
            }
            let world: Vec<Vector3<f32>> = corners.iter().map(|&i| m.transform_point(&Point3::from(positions[i])).coords).collect();
            let face = (world[1] - world[0]).cross(&(world[2] - world[0]));
            let face = if face.norm() > 0.0 { face.normalize() } else { Vector3::z() };
            for (k, &i) in corners.iter().enumerate() {
                let n = match &normals {
                    Some(ns) => {
                        let n = normal_m * Vector3::from(ns[i]);
                        if n.norm() > 0.0 {
                            n.normalize()
                        } else {
                            face
                        }
                    }
                    None => face,
                };
                let vc = colors.as_ref().map_or([1.0; 4], |c| c[i]);
                self.vertices.push(MeshVertex {
                    position: to_sim(world[k]),
                    normal: to_sim(n),
                    uv: uvs.as_ref().map_or([0.0; 2], |u| u[i]),
                    color: [factor[0] * vc[0], factor[1] * vc[1], factor[2] * vc[2], factor[3] * vc[3]],
                    texture,
                });
            }
        }
        Ok(())
    }

    /// Centred on the bounding box and scaled into the unit box.
    fn finish(mut self, file: &Path, textures: Vec<Vec<u8>>) -> MeshAsset {
        let mut lo = [f32::INFINITY; 3];
        let mut hi = [f32::NEG_INFINITY; 3];
        for v in &self.vertices {
            for a in 0..3 {
                lo[a] = lo[a].min(v.position[a]);
                hi[a] = hi[a].max(v.position[a]);
            }
        }
        // A flat mesh keeps a millimetre of thickness.
        let size = [0, 1, 2].map(|a| (hi[a] - lo[a]).max(1e-3));
        for v in &mut self.vertices {
            let mut n = [0.0; 3];
            for a in 0..3 {
                v.position[a] = (v.position[a] - (lo[a] + hi[a]) / 2.0) / size[a];
                // Normals scale by the inverse transpose: the extent itself.
                n[a] = v.normal[a] * size[a];
            }
            let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt().max(1e-12);
            v.normal = n.map(|x| x / len);
        }
        let triangles = self.vertices.len() / 3;
        let stride = triangles.div_ceil(OUTLINE_TRIANGLES).max(1);
        let outline = (0..triangles)
            .step_by(stride)
            .flat_map(|t| (0..3).map(move |k| 3 * t + k))
            .map(|i| Point3::from(self.vertices[i].position))
            .collect();
        MeshAsset { file: file.into(), vertices: self.vertices, textures, size, outline }
    }
}

/// A decoded glTF image as [`TEXTURE_SIZE`]² RGBA8.
fn resample(data: &gltf::image::Data) -> Result<Vec<u8>, String> {
    use gltf::image::Format;
    let (w, h) = (data.width, data.height);
    let n = (w * h) as usize;
    let rgba: Vec<u8> = match data.format {
        Format::R8G8B8A8 => data.pixels.clone(),
        Format::R8G8B8 => data.pixels.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
        Format::R8G8 => data.pixels.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect(),
        Format::R8 => data.pixels.iter().flat_map(|&p| [p, p, p, 255]).collect(),
        Format::R16G16B16A16 => data.pixels.chunks_exact(2).map(|b| b[1]).collect(),
        Format::R16G16B16 => data.pixels.chunks_exact(6).flat_map(|p| [p[1], p[3], p[5], 255]).collect(),
        other => return Err(format!("pixel format {other:?} is not supported (8 or 16 bit RGB, RGBA, grey)")),
    };
    if rgba.len() != n * 4 || n == 0 {
        return Err(format!("{w}×{h} image with {} bytes of pixels", data.pixels.len()));
    }
    let s = TEXTURE_SIZE as usize;
    let mut out = Vec::with_capacity(s * s * 4);
    // Box filter over the source texels each output texel covers (at least one).
    for y in 0..s {
        let (y0, y1) = (y * h as usize / s, ((y + 1) * h as usize).div_ceil(s).max(y * h as usize / s + 1));
        for x in 0..s {
            let (x0, x1) = (x * w as usize / s, ((x + 1) * w as usize).div_ceil(s).max(x * w as usize / s + 1));
            let mut acc = [0u32; 4];
            for sy in y0..y1.min(h as usize) {
                for sx in x0..x1.min(w as usize) {
                    let p = &rgba[(sy * w as usize + sx) * 4..][..4];
                    for c in 0..4 {
                        acc[c] += p[c] as u32;
                    }
                }
            }
            let count = ((y1.min(h as usize) - y0) * (x1.min(w as usize) - x0)).max(1) as u32;
            out.extend(acc.map(|a| ((a + count / 2) / count) as u8));
        }
    }
    Ok(out)
}
