//! The test card: real, decodable MPEG-TS (H.264 High@3.1 video, AAC-LC audio) that loops one
//! committed 2-second GOP per picture size (`assets/testcard/make.sh` made them with ffmpeg;
//! no ffmpeg is needed at run time).
//!
//! Fragment `n` is the template with every timestamp moved on by `n` loops: PTS and DTS of each
//! PES header and the PCR of each adaptation field (by 2 s, plus a base that the stream's seed
//! sets), and the continuity counter of each PID by the packets of that PID in `n` templates, so
//! fragments played one after another are one continuous stream. Null packets (PID 0x1FFF) pad
//! a fragment to its bitrate; their payload, which decoders skip, is the caller's.

use bytes::{BufMut, Bytes, BytesMut};

/// Size of an MPEG-TS packet.
pub(crate) const TS_PACKET: usize = 188;

/// Length of one template, in 90 kHz ticks (2 s).
pub(crate) const LOOP_TICKS: u64 = 180_000;

/// The PID of null packets.
const NULL_PID: u16 = 0x1fff;

/// PTS, DTS and PCR bases are 33-bit counters.
const WRAP: u64 = 1 << 33;

/// One committed GOP.
struct Template {
    height: u32,
    bytes: &'static [u8],
}

static TEMPLATES: [Template; 3] = [
    Template {
        height: 360,
        bytes: include_bytes!("../../assets/testcard/360p.ts"),
    },
    Template {
        height: 540,
        bytes: include_bytes!("../../assets/testcard/540p.ts"),
    },
    Template {
        height: 720,
        bytes: include_bytes!("../../assets/testcard/720p.ts"),
    },
];

/// The template for a rendition `height` pixels high: the tallest not above it (the smallest
/// for anything lower). Its picture is what a player shows, whatever the ladder says.
pub(crate) fn template(height: u32) -> &'static [u8] {
    TEMPLATES
        .iter()
        .rev()
        .find(|t| t.height <= height)
        .unwrap_or(&TEMPLATES[0])
        .bytes
}

/// Packets carrying a payload, per PID, in `ts` (what one loop adds to each PID's continuity
/// counter, modulo 16).
fn payload_packets(ts: &[u8]) -> [u8; 8192] {
    let mut n = [0u8; 8192];
    for p in ts.chunks_exact(TS_PACKET) {
        let pid = pid_of(p);
        if p[3] & 0x10 != 0 {
            n[usize::from(pid)] = n[usize::from(pid)].wrapping_add(1);
        }
    }
    n
}

fn pid_of(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

fn read_ts(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1) & 7) << 30
        | u64::from(b[1]) << 22
        | u64::from(b[2] >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4] >> 1)
}

fn write_ts(b: &mut [u8], v: u64) {
    b[0] = (b[0] & 0xf0) | (((v >> 30) & 7) as u8) << 1 | 1;
    b[1] = (v >> 22) as u8;
    b[2] = (((v >> 15) & 0x7f) as u8) << 1 | 1;
    b[3] = (v >> 7) as u8;
    b[4] = ((v & 0x7f) as u8) << 1 | 1;
}

fn read_pcr_base(b: &[u8]) -> u64 {
    u64::from(b[0]) << 25
        | u64::from(b[1]) << 17
        | u64::from(b[2]) << 9
        | u64::from(b[3]) << 1
        | u64::from(b[4] >> 7)
}

fn write_pcr_base(b: &mut [u8], v: u64) {
    b[0] = (v >> 25) as u8;
    b[1] = (v >> 17) as u8;
    b[2] = (v >> 9) as u8;
    b[3] = (v >> 1) as u8;
    b[4] = ((v & 1) as u8) << 7 | (b[4] & 0x7f);
}

/// Moves every timestamp of the packets in `ts` on by `ticks` (90 kHz) and each PID's
/// continuity counter on by `loops` templates' worth.
fn shift(ts: &mut [u8], ticks: u64, loops: u64, counts: &[u8; 8192]) {
    let ticks = ticks % WRAP;
    for p in ts.chunks_exact_mut(TS_PACKET) {
        let pid = pid_of(p);
        let afc = (p[3] >> 4) & 3;
        if afc & 1 != 0 && pid != NULL_PID {
            let step = (u64::from(counts[usize::from(pid)]) * (loops % 16)) as u8;
            p[3] = (p[3] & 0xf0) | ((p[3] & 0x0f).wrapping_add(step) & 0x0f);
        }
        let mut at = 4;
        if afc & 2 != 0 {
            let len = usize::from(p[4]);
            if len > 0 && p[5] & 0x10 != 0 && len >= 7 {
                let pcr = (read_pcr_base(&p[6..11]) + ticks) % WRAP;
                write_pcr_base(&mut p[6..11], pcr);
            }
            at = 5 + len;
        }
        // A PES header at the start of the payload: its PTS, and DTS if any.
        let unit_start = p[1] & 0x40 != 0;
        if afc & 1 == 0 || !unit_start || at + 19 > TS_PACKET {
            continue;
        }
        let pes = &mut p[at..];
        let media = matches!(pes[3], 0xc0..=0xef);
        if pes[..3] != [0, 0, 1] || !media {
            continue;
        }
        let flags = pes[7] >> 6;
        if flags & 2 != 0 {
            let v = (read_ts(&pes[9..14]) + ticks) % WRAP;
            write_ts(&mut pes[9..14], v);
        }
        if flags == 3 {
            let v = (read_ts(&pes[14..19]) + ticks) % WRAP;
            write_ts(&mut pes[14..19], v);
        }
    }
}

/// Fragment `seq` of the stream looping `template`: its timestamps `base` ticks (90 kHz) plus
/// `seq` loops on, then null packets up to `len` bytes (rounded down to whole packets; never
/// shorter than the template), their payloads filled by `fill`.
pub(crate) fn fragment(
    template: &[u8],
    seq: u64,
    base: u64,
    len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Bytes {
    let whole = template.len() / TS_PACKET * TS_PACKET;
    let template = &template[..whole];
    let pad = (len / TS_PACKET).saturating_sub(whole / TS_PACKET);
    let mut out = BytesMut::with_capacity(whole + pad * TS_PACKET);
    out.extend_from_slice(template);
    let counts = payload_packets(template);
    let ticks = base.wrapping_add(seq.wrapping_mul(LOOP_TICKS) % WRAP);
    shift(&mut out, ticks, seq, &counts);
    let mut payload = vec![0u8; pad * (TS_PACKET - 4)];
    fill(&mut payload);
    for (i, chunk) in payload.chunks(TS_PACKET - 4).enumerate() {
        out.put_u8(0x47);
        out.put_u16(NULL_PID);
        out.put_u8(0x10 | (i as u8 & 0x0f));
        out.put_slice(chunk);
    }
    out.freeze()
}

/// A committed fragmented-MP4 file: an init segment (`ftyp` + `moov`) and one fragment
/// (`moof` + `mdat`), with where the fragment's sequence number and decode time sit.
#[derive(Debug)]
pub(crate) struct Fmp4 {
    bytes: &'static [u8],
    /// Where the `moof` starts (the end of the init segment).
    moof: usize,
    /// The track's timescale (`mdhd`).
    timescale: u64,
    /// Offset of `mfhd`'s sequence number, from `moof`.
    sequence_at: usize,
    /// Offset of `tfdt`'s decode time, from `moof`, and whether it is 64-bit.
    time_at: usize,
    time_64: bool,
    /// Offset of the `mdat` header, from `moof` (the last box).
    mdat_at: usize,
}

/// The boxes in `d[from..to]`: (type, start, end).
fn boxes(d: &[u8], from: usize, to: usize) -> Vec<([u8; 4], usize, usize)> {
    let mut out = Vec::new();
    let mut at = from;
    while at + 8 <= to {
        let size = u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]) as usize;
        if size < 8 || at + size > to {
            break;
        }
        let mut kind = [0u8; 4];
        kind.copy_from_slice(&d[at + 4..at + 8]);
        out.push((kind, at, at + size));
        at += size;
    }
    out
}

/// The box at `path` (each step a child of the previous) inside `d[from..to]`.
fn find(d: &[u8], from: usize, to: usize, path: &[&[u8; 4]]) -> Option<(usize, usize)> {
    let (first, rest) = path.split_first()?;
    let (_, s, e) = boxes(d, from, to).into_iter().find(|b| &b.0 == *first)?;
    if rest.is_empty() {
        Some((s, e))
    } else {
        find(d, s + 8, e, rest)
    }
}

impl Fmp4 {
    fn parse(bytes: &'static [u8]) -> Option<Fmp4> {
        let top = boxes(bytes, 0, bytes.len());
        let moof = top.iter().find(|b| &b.0 == b"moof")?.1;
        let mdat = top.iter().find(|b| &b.0 == b"mdat")?;
        if mdat.2 != bytes.len() || mdat.1 < moof {
            return None;
        }
        let (mdhd, _) = find(bytes, 0, moof, &[b"moov", b"trak", b"mdia", b"mdhd"])?;
        let v1 = bytes[mdhd + 8] == 1;
        let ts = mdhd + if v1 { 28 } else { 20 };
        let timescale = u64::from(u32::from_be_bytes(bytes.get(ts..ts + 4)?.try_into().ok()?));
        let (mfhd, mfhd_end) = find(bytes, moof, bytes.len(), &[b"moof", b"mfhd"])?;
        if mfhd + 16 > mfhd_end || mdat.1 + 8 > mdat.2 {
            return None;
        }
        let (tfdt, tfdt_end) = find(bytes, moof, bytes.len(), &[b"moof", b"traf", b"tfdt"])?;
        let time_64 = bytes[tfdt + 8] == 1;
        if tfdt + 12 + if time_64 { 8 } else { 4 } > tfdt_end || timescale == 0 {
            return None;
        }
        Some(Fmp4 {
            bytes,
            moof,
            timescale,
            sequence_at: mfhd + 12 - moof,
            time_at: tfdt + 12 - moof,
            time_64,
            mdat_at: mdat.1 - moof,
        })
    }

    /// The init segment (`ftyp` + `moov`).
    pub(crate) fn init(&self) -> &'static [u8] {
        &self.bytes[..self.moof]
    }

    /// Fragment `seq`: the template's fragment numbered `seq + 1`, its decode time `seq` loops
    /// (2 s each) on, its `mdat` grown with padding up to `len` bytes in all (never shorter
    /// than the template), filled by `fill`. Samples are placed by offsets from the `moof`
    /// (`default-base-is-moof`), so bytes after the last sample are never read.
    pub(crate) fn fragment(&self, seq: u64, len: usize, fill: impl FnOnce(&mut [u8])) -> Bytes {
        let frag = &self.bytes[self.moof..];
        let mut out = BytesMut::with_capacity(len.max(frag.len()));
        out.extend_from_slice(frag);
        let n = (seq.wrapping_add(1) as u32).to_be_bytes();
        out[self.sequence_at..self.sequence_at + 4].copy_from_slice(&n);
        let step = seq.wrapping_mul(2 * self.timescale);
        let t = self.time_at;
        if self.time_64 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&out[t..t + 8]);
            let v = u64::from_be_bytes(b).wrapping_add(step);
            out[t..t + 8].copy_from_slice(&v.to_be_bytes());
        } else {
            let mut b = [0u8; 4];
            b.copy_from_slice(&out[t..t + 4]);
            let v = u32::from_be_bytes(b).wrapping_add(step as u32);
            out[t..t + 4].copy_from_slice(&v.to_be_bytes());
        }
        let pad = len.saturating_sub(frag.len());
        let m = self.mdat_at;
        let mut size = [0u8; 4];
        size.copy_from_slice(&out[m..m + 4]);
        if let Some(grown) = u32::from_be_bytes(size).checked_add(pad as u32)
            && pad > 0
            && pad <= u32::MAX as usize
        {
            out[m..m + 4].copy_from_slice(&grown.to_be_bytes());
            let mut padding = vec![0u8; pad];
            fill(&mut padding);
            out.extend_from_slice(&padding);
        }
        out.freeze()
    }
}

static FMP4: std::sync::OnceLock<[Option<Fmp4>; 4]> = std::sync::OnceLock::new();

fn fmp4_all() -> &'static [Option<Fmp4>; 4] {
    FMP4.get_or_init(|| {
        [
            Fmp4::parse(include_bytes!("../../assets/testcard/360p.mp4")),
            Fmp4::parse(include_bytes!("../../assets/testcard/540p.mp4")),
            Fmp4::parse(include_bytes!("../../assets/testcard/720p.mp4")),
            Fmp4::parse(include_bytes!("../../assets/testcard/audio.mp4")),
        ]
    })
}

/// The fragmented-MP4 video template for a rendition `height` pixels high (as [`template`]
/// chooses).
pub(crate) fn fmp4_video(height: u32) -> Option<&'static Fmp4> {
    let i = TEMPLATES
        .iter()
        .rposition(|t| t.height <= height)
        .unwrap_or(0);
    fmp4_all()[i].as_ref()
}

/// The fragmented-MP4 audio template (one for every rendition).
pub(crate) fn fmp4_audio() -> Option<&'static Fmp4> {
    fmp4_all()[3].as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (PID, PTS, DTS) of each PES start, and each PCR, in order.
    fn stamps(ts: &[u8]) -> (Vec<(u16, u64)>, Vec<u64>) {
        let (mut pes, mut pcrs) = (Vec::new(), Vec::new());
        for p in ts.chunks_exact(TS_PACKET) {
            let afc = (p[3] >> 4) & 3;
            let mut at = 4;
            if afc & 2 != 0 {
                if p[4] >= 7 && p[5] & 0x10 != 0 {
                    pcrs.push(read_pcr_base(&p[6..11]));
                }
                at = 5 + usize::from(p[4]);
            }
            if afc & 1 != 0 && p[1] & 0x40 != 0 && at + 14 <= TS_PACKET {
                let pes_h = &p[at..];
                if pes_h[..3] == [0, 0, 1] && pes_h[7] & 0x80 != 0 {
                    pes.push((pid_of(p), read_ts(&pes_h[9..14])));
                }
            }
        }
        (pes, pcrs)
    }

    #[test]
    fn the_templates_are_whole_ts_packets_with_video_audio_and_pcr() {
        for t in &TEMPLATES {
            assert_eq!(t.bytes.len() % TS_PACKET, 0, "{}p", t.height);
            assert!(t.bytes.chunks(TS_PACKET).all(|p| p[0] == 0x47));
            let (pes, pcrs) = stamps(t.bytes);
            assert!(pes.len() > 50, "video and audio PES: {}", pes.len());
            assert!(!pcrs.is_empty());
        }
    }

    #[test]
    fn timestamps_and_counters_move_on_by_whole_loops() {
        let t = template(540);
        let zero = fragment(t, 0, 0, 0, |_| {});
        assert_eq!(&zero[..], t, "fragment 0 without a base is the template");
        let five = fragment(t, 5, 1000, 0, |_| {});
        let (p0, c0) = stamps(&zero);
        let (p5, c5) = stamps(&five);
        assert_eq!(p0.len(), p5.len());
        for (a, b) in p0.iter().zip(&p5) {
            assert_eq!(b.0, a.0);
            assert_eq!(b.1, a.1 + 5 * LOOP_TICKS + 1000);
        }
        for (a, b) in c0.iter().zip(&c5) {
            assert_eq!(*b, a + 5 * LOOP_TICKS + 1000);
        }
        // Continuity: the counter of each PID's first packet in fragment n+1 follows its last
        // in fragment n.
        let one = fragment(t, 1, 0, 0, |_| {});
        let mut last = std::collections::HashMap::new();
        for p in zero.chunks(TS_PACKET).filter(|p| p[3] & 0x10 != 0) {
            last.insert(pid_of(p), p[3] & 0x0f);
        }
        let mut seen = std::collections::HashSet::new();
        for p in one.chunks(TS_PACKET).filter(|p| p[3] & 0x10 != 0) {
            if seen.insert(pid_of(p)) {
                assert_eq!(
                    p[3] & 0x0f,
                    (last[&pid_of(p)] + 1) & 0x0f,
                    "pid {}",
                    pid_of(p)
                );
            }
        }
    }

    #[test]
    fn timestamps_wrap_at_33_bits() {
        let t = template(360);
        let far = fragment(t, 0, WRAP - 10, 0, |_| {});
        let (p, _) = stamps(&far);
        let (p0, _) = stamps(t);
        assert_eq!(p[0].1, (p0[0].1 + WRAP - 10) % WRAP);
    }

    #[test]
    fn padding_is_null_packets_with_the_callers_payload() {
        let t = template(720);
        let len = t.len() + 10 * TS_PACKET + 100;
        let f = fragment(t, 3, 0, len, |b| b.fill(0xab));
        assert_eq!(f.len(), t.len() + 10 * TS_PACKET);
        for p in f[t.len()..].chunks(TS_PACKET) {
            assert_eq!(pid_of(p), NULL_PID);
            assert!(p[4..].iter().all(|&b| b == 0xab));
        }
        // Never shorter than the template.
        assert_eq!(fragment(t, 3, 0, 10, |_| {}).len(), t.len());
    }

    #[test]
    fn the_fmp4_templates_parse_and_fragments_move_on_by_whole_loops() {
        for f in fmp4_all() {
            let f = f.as_ref().expect("a committed fMP4 template parses");
            assert!(f.init().starts_with(&[0, 0, 0]) && &f.init()[4..8] == b"ftyp");
            let zero = f.fragment(0, 0, |_| {});
            assert_eq!(&zero[..], &f.bytes[f.moof..]);
            let seven = f.fragment(7, zero.len() + 1000, |b| b.fill(0xcd));
            assert_eq!(seven.len(), zero.len() + 1000);
            let seq =
                u32::from_be_bytes(seven[f.sequence_at..f.sequence_at + 4].try_into().unwrap());
            assert_eq!(seq, 8);
            let t = f.time_at;
            let time = if f.time_64 {
                u64::from_be_bytes(seven[t..t + 8].try_into().unwrap())
            } else {
                u64::from(u32::from_be_bytes(seven[t..t + 4].try_into().unwrap()))
            };
            assert_eq!(time, 7 * 2 * f.timescale);
            let m = f.mdat_at;
            let mdat = u32::from_be_bytes(seven[m..m + 4].try_into().unwrap()) as usize;
            assert_eq!(m + mdat, seven.len(), "the padding is inside the mdat");
        }
        assert_eq!(fmp4_audio().map(|a| a.timescale), Some(64_000));
    }

    #[test]
    fn each_height_gets_the_tallest_template_not_above_it() {
        assert_eq!(template(100).len(), TEMPLATES[0].bytes.len());
        assert_eq!(template(539).len(), TEMPLATES[0].bytes.len());
        assert_eq!(template(540).len(), TEMPLATES[1].bytes.len());
        assert_eq!(template(2160).len(), TEMPLATES[2].bytes.len());
    }
}
