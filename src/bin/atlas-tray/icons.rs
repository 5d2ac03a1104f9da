//! The tray icon images, one per [`AgentState`]: 64x64 RGBA PNGs in `assets/icons/`, embedded in
//! the binary and decoded when the tray starts. The PNGs were drawn by the ignored test
//! `generate_state_icons` below (`cargo test -- --ignored generate_state_icons` redraws them).

use atlas::desktop::AgentState;

/// Width and height of every icon, in pixels.
pub(crate) const SIZE: u32 = 64;

/// The embedded PNG for a state.
fn png_bytes(state: AgentState) -> &'static [u8] {
    match state {
        AgentState::Idle => include_bytes!("../../../assets/icons/idle.png"),
        AgentState::Listening => include_bytes!("../../../assets/icons/listening.png"),
        AgentState::Thinking => include_bytes!("../../../assets/icons/thinking.png"),
        AgentState::Speaking => include_bytes!("../../../assets/icons/speaking.png"),
        AgentState::Paused => include_bytes!("../../../assets/icons/paused.png"),
        AgentState::Error => include_bytes!("../../../assets/icons/error.png"),
    }
}

/// The icon for a state as `SIZE`x`SIZE` RGBA bytes.
pub(crate) fn rgba(state: AgentState) -> Result<Vec<u8>, String> {
    let what = |e: png::DecodingError| format!("embedded {:?} icon: {e}", state);
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes(state)));
    let mut reader = decoder.read_info().map_err(what)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| format!("embedded {state:?} icon is too large"))?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(what)?;
    if info.color_type != png::ColorType::Rgba
        || info.bit_depth != png::BitDepth::Eight
        || (info.width, info.height) != (SIZE, SIZE)
    {
        return Err(format!(
            "embedded {state:?} icon is {:?} {:?} {}x{}, not 8-bit RGBA {SIZE}x{SIZE}",
            info.color_type, info.bit_depth, info.width, info.height
        ));
    }
    buf.truncate(info.buffer_size());
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_distinct_opaque_centred_icon() {
        let mut seen = Vec::new();
        for state in AgentState::ALL {
            let px = rgba(state).unwrap();
            assert_eq!(px.len(), (SIZE * SIZE * 4) as usize);
            let at = |x: u32, y: u32| {
                let i = ((y * SIZE + x) * 4) as usize;
                [px[i], px[i + 1], px[i + 2], px[i + 3]]
            };
            assert_eq!(at(0, 0)[3], 0, "{state:?}: corner should be transparent");
            assert_eq!(at(SIZE / 2, 5)[3], 255, "{state:?}: disc should be opaque");
            assert!(!seen.contains(&px), "{state:?} looks like another state");
            seen.push(px);
        }
    }

    /// Draws the six icons into `assets/icons/`: a coloured disc with a white glyph.
    #[test]
    #[ignore = "draws the icon PNGs; run once when changing their design"]
    fn generate_state_icons() {
        // `file!()` is this file's path, absolute or relative to the package root (the test's
        // working directory).
        let dir = std::path::Path::new(file!())
            .parent()
            .unwrap()
            .join("../../../assets/icons");
        std::fs::create_dir_all(&dir).unwrap();
        for state in AgentState::ALL {
            let name = format!("{}.png", state.label().to_lowercase());
            let file = std::fs::File::create(dir.join(&name)).unwrap();
            let mut enc = png::Encoder::new(std::io::BufWriter::new(file), SIZE, SIZE);
            enc.set_color(png::ColorType::Rgba);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().unwrap();
            writer.write_image_data(&draw(state)).unwrap();
        }
    }

    /// Renders one icon with 4x4 supersampling.
    fn draw(state: AgentState) -> Vec<u8> {
        let (rgb, glyph): ([u8; 3], fn(f32, f32) -> bool) = match state {
            // Idle: slate disc, hollow ring.
            AgentState::Idle => ([0x47, 0x55, 0x69], |x, y| {
                let r = (x * x + y * y).sqrt();
                (7.0..12.0).contains(&r)
            }),
            // Listening: green disc, solid dot.
            AgentState::Listening => ([0x16, 0xa3, 0x4a], |x, y| x * x + y * y < 13.0 * 13.0),
            // Thinking: amber disc, three dots.
            AgentState::Thinking => ([0xd9, 0x77, 0x06], |x, y| {
                [-14.0f32, 0.0, 14.0]
                    .iter()
                    .any(|cx| (x - cx).powi(2) + y * y < 25.0)
            }),
            // Speaking: blue disc, three sound bars.
            AgentState::Speaking => ([0x25, 0x63, 0xeb], |x, y| {
                [(-12.0f32, 8.0f32), (0.0, 15.0), (12.0, 8.0)]
                    .iter()
                    .any(|(cx, h)| (x - cx).abs() < 3.5 && y.abs() < *h)
            }),
            // Paused: grey disc, pause bars.
            AgentState::Paused => ([0x9c, 0xa3, 0xaf], |x, y| {
                (x.abs() > 3.0 && x.abs() < 10.0) && y.abs() < 13.0
            }),
            // Error: red disc, exclamation mark.
            AgentState::Error => ([0xdc, 0x26, 0x26], |x, y| {
                (x.abs() < 3.5 && (-17.0..6.0).contains(&y)) || x * x + (y - 13.0).powi(2) < 16.0
            }),
        };
        let c = SIZE as f32 / 2.0;
        let radius = c - 2.0;
        let mut out = Vec::with_capacity((SIZE * SIZE * 4) as usize);
        for py in 0..SIZE {
            for px in 0..SIZE {
                let (mut disc, mut white) = (0.0f32, 0.0f32);
                for sy in 0..4 {
                    for sx in 0..4 {
                        let x = px as f32 + (sx as f32 + 0.5) / 4.0 - c;
                        let y = py as f32 + (sy as f32 + 0.5) / 4.0 - c;
                        if x * x + y * y <= radius * radius {
                            disc += 1.0 / 16.0;
                            if glyph(x, y) {
                                white += 1.0 / 16.0;
                            }
                        }
                    }
                }
                let w = if disc > 0.0 { white / disc } else { 0.0 };
                for ch in rgb {
                    out.push((ch as f32 * (1.0 - w) + 255.0 * w).round() as u8);
                }
                out.push((disc * 255.0).round() as u8);
            }
        }
        out
    }
}
