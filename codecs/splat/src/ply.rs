//! The standard 3DGS `.ply` layout: read (binary little/big endian and ASCII), write (binary
//! little endian, INRIA property order).

use crate::{
    error::{Result, malformed},
    scene::{SplatScene, check_splat_limit, sh_degree_for_coeffs},
};

/// Largest PLY header accepted.
const MAX_HEADER_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Ascii,
    LittleEndian,
    BigEndian,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl Scalar {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "char" | "int8" => Self::I8,
            "uchar" | "uint8" => Self::U8,
            "short" | "int16" => Self::I16,
            "ushort" | "uint16" => Self::U16,
            "int" | "int32" => Self::I32,
            "uint" | "uint32" => Self::U32,
            "float" | "float32" => Self::F32,
            "double" | "float64" => Self::F64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Self::I8 | Self::U8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    fn read(self, bytes: &[u8], encoding: Encoding) -> f64 {
        macro_rules! get {
            ($t:ty) => {{
                let raw = bytes.try_into().expect("sized by caller");
                (if encoding == Encoding::BigEndian {
                    <$t>::from_be_bytes(raw)
                } else {
                    <$t>::from_le_bytes(raw)
                }) as f64
            }};
        }
        match self {
            Self::I8 => bytes[0] as i8 as f64,
            Self::U8 => bytes[0] as f64,
            Self::I16 => get!(i16),
            Self::U16 => get!(u16),
            Self::I32 => get!(i32),
            Self::U32 => get!(u32),
            Self::F32 => get!(f32),
            Self::F64 => get!(f64),
        }
    }
}

struct Element {
    name: String,
    count: u64,
    properties: Vec<(String, Scalar)>,
}

/// What reading a PLY found besides the scene.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlyReport {
    /// Vertex properties that are not part of the 3DGS parameterization and were not kept.
    pub dropped_properties: Vec<String>,
    /// Whether the file carried `nx ny nz` with any nonzero value (normals are not used by
    /// 3DGS renderers and are written back as zeros).
    pub nonzero_normals: bool,
}

/// True when `bytes` starts like a PLY file.
pub fn sniff(bytes: &[u8]) -> bool {
    bytes.starts_with(b"ply\n") || bytes.starts_with(b"ply\r\n")
}

/// Reads a 3DGS scene; refuses more than `max_splats` splats before allocating for them.
pub fn read_ply(bytes: &[u8], max_splats: u64) -> Result<(SplatScene, PlyReport)> {
    if !sniff(bytes) {
        return Err(malformed(
            "not a PLY file: it must start with the line `ply`",
        ));
    }
    let end = find_header_end(bytes)?;
    let header = std::str::from_utf8(&bytes[..end])
        .map_err(|_| malformed("PLY header is not valid UTF-8/ASCII"))?;
    let (encoding, elements) = parse_header(header)?;
    let body = &bytes[end..];
    let vertex_index = elements
        .iter()
        .position(|e| e.name == "vertex")
        .ok_or_else(|| malformed("PLY has no `element vertex`"))?;
    if vertex_index != 0 {
        return Err(malformed(
            "`element vertex` must be the first element of a splat PLY",
        ));
    }
    let vertex = &elements[0];
    check_splat_limit(vertex.count, max_splats)?;
    let n = vertex.count as usize;
    let layout = VertexLayout::new(&vertex.properties)?;
    let stride: usize = vertex.properties.iter().map(|(_, t)| t.size()).sum();

    let mut values = vec![0f64; vertex.properties.len()];
    let mut scene = layout.empty_scene(n);
    let mut nonzero_normals = false;
    match encoding {
        Encoding::Ascii => {
            let text = std::str::from_utf8(body)
                .map_err(|_| malformed("ASCII PLY body is not valid UTF-8"))?;
            let mut lines = text.lines().filter(|l| !l.trim().is_empty());
            for i in 0..n {
                let line = lines.next().ok_or_else(|| {
                    malformed(format!("ASCII PLY ends after {i} of {n} vertices"))
                })?;
                let mut fields = line.split_ascii_whitespace();
                for (slot, (name, _)) in values.iter_mut().zip(&vertex.properties) {
                    let field = fields.next().ok_or_else(|| {
                        malformed(format!("vertex {i}: missing value for `{name}`"))
                    })?;
                    *slot = field.parse().map_err(|_| {
                        malformed(format!(
                            "vertex {i}: `{field}` is not a number (property `{name}`)"
                        ))
                    })?;
                }
                if fields.next().is_some() {
                    return Err(malformed(format!(
                        "vertex {i}: more values than properties"
                    )));
                }
                nonzero_normals |= layout.push(&mut scene, &values);
            }
        }
        Encoding::LittleEndian | Encoding::BigEndian => {
            let needed = n
                .checked_mul(stride)
                .ok_or_else(|| malformed("vertex count times vertex size overflows"))?;
            if body.len() < needed {
                return Err(malformed(format!(
                    "PLY body has {} bytes, {n} vertices of {stride} bytes need {needed}",
                    body.len()
                )));
            }
            let trailing_elements: u64 = elements[1..].iter().map(|e| e.count).sum();
            if body.len() > needed && trailing_elements == 0 {
                return Err(malformed(format!(
                    "{} unexpected bytes after the last vertex",
                    body.len() - needed
                )));
            }
            let records = body[..needed].chunks_exact(stride);
            let all_f32 = vertex.properties.iter().all(|(_, t)| *t == Scalar::F32);
            if encoding == Encoding::LittleEndian && all_f32 {
                // The usual 3DGS file: every property a little-endian float, read in place.
                for record in records {
                    let at = |i: usize| {
                        f32::from_le_bytes(record[4 * i..4 * i + 4].try_into().expect("4 bytes"))
                    };
                    nonzero_normals |= layout.push_with(&mut scene, at);
                }
            } else {
                for record in records {
                    let mut at = 0;
                    for (slot, (_, t)) in values.iter_mut().zip(&vertex.properties) {
                        *slot = t.read(&record[at..at + t.size()], encoding);
                        at += t.size();
                    }
                    nonzero_normals |= layout.push(&mut scene, &values);
                }
            }
        }
    }
    scene.validate()?;
    Ok((
        scene,
        PlyReport {
            dropped_properties: layout.dropped,
            nonzero_normals,
        },
    ))
}

fn find_header_end(bytes: &[u8]) -> Result<usize> {
    let limit = bytes.len().min(MAX_HEADER_BYTES);
    for marker in [&b"end_header\n"[..], b"end_header\r\n"] {
        if let Some(at) = bytes[..limit]
            .windows(marker.len())
            .position(|w| w == marker)
        {
            return Ok(at + marker.len());
        }
    }
    Err(malformed(format!(
        "no `end_header` line in the first {MAX_HEADER_BYTES} bytes"
    )))
}

fn parse_header(header: &str) -> Result<(Encoding, Vec<Element>)> {
    let mut encoding = None;
    let mut elements: Vec<Element> = Vec::new();
    for (number, line) in header.lines().enumerate().skip(1) {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        let at =
            |what: &str| malformed(format!("PLY header line {}: {what}: `{line}`", number + 1));
        match words.as_slice() {
            [] | ["comment", ..] | ["obj_info", ..] | ["end_header"] => {}
            ["format", kind, version] => {
                if *version != "1.0" {
                    return Err(at("unsupported format version"));
                }
                encoding = Some(match *kind {
                    "ascii" => Encoding::Ascii,
                    "binary_little_endian" => Encoding::LittleEndian,
                    "binary_big_endian" => Encoding::BigEndian,
                    _ => return Err(at("unknown format")),
                });
            }
            ["element", name, count] => {
                let count = count
                    .parse()
                    .map_err(|_| at("element count is not a number"))?;
                elements.push(Element {
                    name: name.to_string(),
                    count,
                    properties: Vec::new(),
                });
            }
            ["property", "list", ..] => {
                let element = elements
                    .last()
                    .ok_or_else(|| at("property before any element"))?;
                if element.name == "vertex" {
                    return Err(at("list properties on vertices are not supported"));
                }
                return Err(at("list properties are not supported"));
            }
            ["property", kind, name] => {
                let scalar = Scalar::parse(kind).ok_or_else(|| at("unknown property type"))?;
                let element = elements
                    .last_mut()
                    .ok_or_else(|| at("property before any element"))?;
                if element.properties.iter().any(|(n, _)| n == name) {
                    return Err(at("duplicate property"));
                }
                element.properties.push((name.to_string(), scalar));
            }
            _ => return Err(at("unrecognized line")),
        }
    }
    let encoding = encoding.ok_or_else(|| malformed("PLY header has no `format` line"))?;
    Ok((encoding, elements))
}

/// Where each 3DGS attribute sits among a vertex's properties.
struct VertexLayout {
    position: [usize; 3],
    color: [usize; 3],
    opacity: usize,
    scale: [usize; 3],
    rotation: [usize; 4],
    normals: Option<[usize; 3]>,
    sh_rest: Vec<usize>,
    sh_degree: u8,
    dropped: Vec<String>,
}

impl VertexLayout {
    fn new(properties: &[(String, crate::ply::Scalar)]) -> Result<Self> {
        let find = |name: &str| properties.iter().position(|(n, _)| n == name);
        let need = |name: &str| {
            find(name).ok_or_else(|| malformed(format!("PLY vertex has no `{name}` property")))
        };
        let position = [need("x")?, need("y")?, need("z")?];
        let color = [need("f_dc_0")?, need("f_dc_1")?, need("f_dc_2")?];
        let opacity = need("opacity")?;
        let scale = [need("scale_0")?, need("scale_1")?, need("scale_2")?];
        let rotation = [
            need("rot_0")?,
            need("rot_1")?,
            need("rot_2")?,
            need("rot_3")?,
        ];
        let normals = match (find("nx"), find("ny"), find("nz")) {
            (Some(a), Some(b), Some(c)) => Some([a, b, c]),
            (None, None, None) => None,
            _ => return Err(malformed("PLY vertex has some but not all of `nx ny nz`")),
        };
        let mut sh_rest = Vec::new();
        while let Some(i) = find(&format!("f_rest_{}", sh_rest.len())) {
            sh_rest.push(i);
        }
        let rest_total = properties
            .iter()
            .filter(|(n, _)| n.starts_with("f_rest_"))
            .count();
        if rest_total != sh_rest.len() {
            return Err(malformed(format!(
                "f_rest_* properties are not numbered 0..{} without gaps",
                rest_total
            )));
        }
        if sh_rest.len() % 3 != 0 {
            return Err(malformed(format!(
                "{} f_rest_* properties is not a multiple of 3",
                sh_rest.len()
            )));
        }
        let sh_degree = sh_degree_for_coeffs(sh_rest.len() / 3).ok_or_else(|| {
            malformed(format!(
                "{} f_rest_* properties match no SH degree (expected 0, 9, 24 or 45)",
                sh_rest.len()
            ))
        })?;
        let known = |n: &str| {
            ["x", "y", "z", "nx", "ny", "nz", "opacity"].contains(&n)
                || n.starts_with("f_dc_")
                || n.starts_with("f_rest_")
                || n.starts_with("scale_")
                || n.starts_with("rot_")
        };
        let dropped = properties
            .iter()
            .filter(|(n, _)| !known(n))
            .map(|(n, _)| n.clone())
            .collect();
        Ok(Self {
            position,
            color,
            opacity,
            scale,
            rotation,
            normals,
            sh_rest,
            sh_degree,
            dropped,
        })
    }

    fn empty_scene(&self, n: usize) -> SplatScene {
        SplatScene {
            positions: Vec::with_capacity(n),
            scales: Vec::with_capacity(n),
            rotations: Vec::with_capacity(n),
            opacities: Vec::with_capacity(n),
            colors: Vec::with_capacity(n),
            sh_degree: self.sh_degree,
            sh_rest: Vec::with_capacity(n * self.sh_rest.len()),
            antialiased: false,
        }
    }

    /// Appends one vertex of property values `v`; returns whether it had a nonzero normal.
    fn push(&self, scene: &mut SplatScene, v: &[f64]) -> bool {
        self.push_with(scene, |i| v[i] as f32)
    }

    /// Appends one vertex whose property `i` is `value(i)`; returns whether it had a nonzero
    /// normal.
    fn push_with(&self, scene: &mut SplatScene, value: impl Fn(usize) -> f32) -> bool {
        let f = &value;
        scene.positions.push(self.position.map(f));
        scene.colors.push(self.color.map(f));
        scene.opacities.push(f(self.opacity));
        scene.scales.push(self.scale.map(f));
        scene.rotations.push(self.rotation.map(f));
        scene.sh_rest.extend(self.sh_rest.iter().map(|&i| f(i)));
        self.normals.is_some_and(|n| n.iter().any(|&i| f(i) != 0.0))
    }
}

/// Writes a scene as binary little-endian PLY in the INRIA property order (zero normals).
pub fn write_ply(scene: &SplatScene) -> Vec<u8> {
    let rest = scene.sh_rest_per_splat();
    let mut header = format!(
        "ply\nformat binary_little_endian 1.0\nelement vertex {}\n",
        scene.len()
    );
    let mut names: Vec<String> = [
        "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend((0..rest).map(|i| format!("f_rest_{i}")));
    names.extend(
        [
            "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    for name in &names {
        header.push_str("property float ");
        header.push_str(name);
        header.push('\n');
    }
    header.push_str("end_header\n");
    let mut out = Vec::with_capacity(header.len() + scene.len() * names.len() * 4);
    out.extend_from_slice(header.as_bytes());
    for i in 0..scene.len() {
        let mut put = |v: f32| out.extend_from_slice(&v.to_le_bytes());
        scene.positions[i].iter().for_each(|&v| put(v));
        (0..3).for_each(|_| put(0.0));
        scene.colors[i].iter().for_each(|&v| put(v));
        scene.sh_of(i).iter().for_each(|&v| put(v));
        put(scene.opacities[i]);
        scene.scales[i].iter().for_each(|&v| put(v));
        scene.rotations[i].iter().for_each(|&v| put(v));
    }
    out
}

/// Header-level facts of a PLY, read without decoding the body.
pub fn ply_splat_count(bytes: &[u8]) -> Result<(u64, u8)> {
    let end = find_header_end(bytes)?;
    let header = std::str::from_utf8(&bytes[..end])
        .map_err(|_| malformed("PLY header is not valid UTF-8/ASCII"))?;
    let (_, elements) = parse_header(header)?;
    let vertex = elements
        .first()
        .filter(|e| e.name == "vertex")
        .ok_or_else(|| malformed("PLY has no leading `element vertex`"))?;
    let layout = VertexLayout::new(&vertex.properties)?;
    Ok((vertex.count, layout.sh_degree))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::sh_coeffs_per_channel;

    fn tiny(degree: u8) -> SplatScene {
        let n = 3;
        let per = 3 * sh_coeffs_per_channel(degree);
        SplatScene {
            positions: (0..n).map(|i| [i as f32, -1.5, 2.25]).collect(),
            scales: vec![[-4.0, -3.5, -5.0]; n],
            rotations: vec![[0.9, 0.1, -0.2, 0.3]; n],
            opacities: vec![1.5, -2.0, 0.0],
            colors: vec![[0.1, -0.2, 0.3]; n],
            sh_degree: degree,
            sh_rest: (0..n * per).map(|i| i as f32 * 0.01).collect(),
            antialiased: false,
        }
    }

    #[test]
    fn binary_round_trip_is_exact_for_every_degree() {
        for degree in 0..=3 {
            let scene = tiny(degree);
            let (back, report) = read_ply(&write_ply(&scene), 10).unwrap();
            assert_eq!(back, scene);
            assert_eq!(report, PlyReport::default());
        }
    }

    /// The all-float little-endian fast path reads what the general reader reads: the same file
    /// with every value written big-endian goes through the general reader.
    #[test]
    fn the_float_fast_path_reads_what_the_general_reader_reads() {
        for degree in [0, 3] {
            let mut scene = tiny(degree);
            scene.positions[1] = [f32::MIN_POSITIVE, -0.0, 1e30];
            let little = write_ply(&scene);
            let end = find_header_end(&little).unwrap();
            let mut big = std::str::from_utf8(&little[..end])
                .unwrap()
                .replace("binary_little_endian", "binary_big_endian")
                .into_bytes();
            for value in little[end..].chunks_exact(4) {
                let v = f32::from_le_bytes(value.try_into().unwrap());
                big.extend_from_slice(&v.to_be_bytes());
            }
            let (fast, _) = read_ply(&little, 10).unwrap();
            let (general, _) = read_ply(&big, 10).unwrap();
            assert_eq!(fast, scene);
            assert_eq!(general, scene);
            assert_eq!(fast.positions[1][1].to_bits(), (-0.0f32).to_bits());
        }
    }

    #[test]
    fn ascii_and_big_endian_read() {
        let ascii = "ply\nformat ascii 1.0\ncomment hi\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\n\
property float f_dc_0\nproperty float f_dc_1\nproperty float f_dc_2\nproperty float opacity\nproperty float scale_0\n\
property float scale_1\nproperty float scale_2\nproperty float rot_0\nproperty float rot_1\nproperty float rot_2\n\
property float rot_3\nproperty uchar red\nend_header\n1 2 3 0.5 0.5 0.5 2 -3 -3 -3 1 0 0 0 255\n";
        let (scene, report) = read_ply(ascii.as_bytes(), 10).unwrap();
        assert_eq!(scene.positions, vec![[1.0, 2.0, 3.0]]);
        assert_eq!(report.dropped_properties, vec!["red".to_string()]);

        let mut big = ascii
            .replace("format ascii", "format binary_big_endian")
            .replace("property uchar red\n", "");
        big.truncate(big.find("end_header\n").unwrap() + "end_header\n".len());
        let mut bytes = big.into_bytes();
        for v in [
            1f32, 2., 3., 0.5, 0.5, 0.5, 2., -3., -3., -3., 1., 0., 0., 0.,
        ] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        let (scene, _) = read_ply(&bytes, 10).unwrap();
        assert_eq!(scene.opacities, vec![2.0]);
    }

    #[test]
    fn malformed_files_are_explained() {
        let good = write_ply(&tiny(1));
        let cut = &good[..good.len() - 1];
        assert!(read_ply(cut, 10).unwrap_err().to_string().contains("need"));
        assert!(
            read_ply(&good, 2)
                .unwrap_err()
                .to_string()
                .contains("limit is 2")
        );
        let end = find_header_end(&good).unwrap();
        let header =
            std::str::from_utf8(&good[..end])
                .unwrap()
                .replacen("f_rest_4\n", "f_rest_x\n", 1);
        let mut gap = header.into_bytes();
        gap.extend_from_slice(&good[end..]);
        assert!(
            read_ply(&gap, 10)
                .unwrap_err()
                .to_string()
                .contains("without gaps")
        );
        assert!(
            read_ply(b"ply\nformat ascii 1.0\n", 10)
                .unwrap_err()
                .to_string()
                .contains("end_header")
        );
        assert!(
            read_ply(b"PK\x03\x04", 10)
                .unwrap_err()
                .to_string()
                .contains("not a PLY")
        );
        let nan = {
            let mut s = tiny(0);
            s.positions[1][0] = f32::NAN;
            write_ply(&s)
        };
        assert!(
            read_ply(&nan, 10)
                .unwrap_err()
                .to_string()
                .contains("splat 1: position")
        );
    }
}
