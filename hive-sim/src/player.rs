//! A simulated player: start-up buffer, throughput-based ABR, stall accounting, and seeks (on
//! demand).

use hive_core::time::{Duration, Instant};

/// Playback state of one viewer.
#[derive(Clone, Debug)]
pub struct Player {
    /// When the viewer joined.
    pub joined: Instant,
    /// When playback started.
    pub started: Option<Instant>,
    /// Seconds of media buffered ahead of the playhead.
    buffer: f64,
    /// Last time the buffer was updated.
    last: Instant,
    /// Total stall time after start.
    pub stalled: Duration,
    /// Next fragment sequence to request.
    pub next_seq: u64,
    /// Track (index into the ladder) of the next request.
    pub track: usize,
    /// The request in flight: (sequence, track, requested at).
    pub inflight: Option<(u64, usize, Instant)>,
    /// Smoothed throughput estimate, bit/s.
    throughput: Option<f64>,
    /// Sum of the bitrates of played fragments (for the average).
    pub bitrate_sum: f64,
    /// Fragments played.
    pub fragments: u64,
    /// Media time of the playhead's fragment start (for the live delay), seconds.
    pub playhead_seq: u64,
    /// Whether the viewer left.
    pub gone: bool,
    /// When the pending seek was made (cleared by the first fragment after it).
    seek_at: Option<Instant>,
    /// Seconds from each seek to the first fragment after it (playback resumes).
    pub seek_waits: Vec<f64>,
}

/// Seconds buffered before playback starts.
pub const STARTUP_BUFFER: f64 = 2.0;
/// A player more than this many fragments behind the live edge jumps back to it.
pub const LIVE_SYNC_FRAGMENTS: u64 = 8;
/// The player does not request ahead beyond this.
pub const MAX_BUFFER: f64 = 8.0;

impl Player {
    /// A player joining at `now`, starting at fragment `seq`.
    pub fn new(now: Instant, seq: u64, track: usize) -> Self {
        Player {
            joined: now,
            started: None,
            buffer: 0.0,
            last: now,
            stalled: Duration::ZERO,
            next_seq: seq,
            track,
            inflight: None,
            throughput: None,
            bitrate_sum: 0.0,
            fragments: 0,
            playhead_seq: seq,
            gone: false,
            seek_at: None,
            seek_waits: Vec::new(),
        }
    }

    /// The viewer jumps to fragment `seq`: the buffer is dropped and the request in flight
    /// abandoned; after start-up, the wait until the next fragment counts as a stall (and as a
    /// seek wait).
    pub fn seek(&mut self, now: Instant, seq: u64) {
        self.update(now);
        self.buffer = 0.0;
        self.inflight = None;
        self.next_seq = seq;
        self.playhead_seq = seq;
        if self.started.is_some() {
            self.seek_at = Some(now);
        }
    }

    /// Brings playback to `now`: drains the buffer, accounts stalls.
    pub fn update(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        if self.started.is_none() || self.gone {
            return;
        }
        if self.buffer >= dt {
            self.buffer -= dt;
        } else {
            self.stalled += Duration::from_secs_f64(dt - self.buffer);
            self.buffer = 0.0;
        }
    }

    /// Seconds until the buffer runs dry.
    pub fn buffer(&self) -> f64 {
        self.buffer
    }

    /// How long the player gives the engine for the fragment it asks for now (the simulator's
    /// and the demo's and lab's players alike). A playing viewer whose buffer is empty (it
    /// seeked, or starved) is stalled until the fragment arrives: it is due now, as players
    /// tell peer-to-peer engines of urgent fragments (p2p-media-loader fetches those over
    /// HTTP), and the engine goes to the origin at once. Otherwise the fragment is due when the
    /// buffer runs dry, less half a second, and at least in the default 2 s.
    pub fn fragment_deadline(&self) -> std::time::Duration {
        if self.started.is_some() && self.buffer < 0.5 {
            std::time::Duration::ZERO
        } else {
            std::time::Duration::from_secs_f64((self.buffer - 0.5).max(2.0))
        }
    }

    /// Whether the player wants another fragment now.
    pub fn wants_more(&self) -> bool {
        !self.gone && self.inflight.is_none() && self.buffer < MAX_BUFFER
    }

    /// A fragment arrived.
    pub fn on_fragment(
        &mut self,
        now: Instant,
        seq: u64,
        track_bps: u64,
        bytes: u64,
        fragment_s: f64,
        ladder: &[u64],
    ) {
        self.update(now);
        let Some((_, _, asked)) = self.inflight.take() else {
            return;
        };
        let secs = now.saturating_duration_since(asked).as_secs_f64().max(1e-3);
        let sample = bytes as f64 * 8.0 / secs;
        self.throughput = Some(self.throughput.map_or(sample, |t| 0.7 * t + 0.3 * sample));
        self.buffer += fragment_s;
        if let Some(t) = self.seek_at.take() {
            self.seek_waits
                .push(now.saturating_duration_since(t).as_secs_f64());
        }
        self.bitrate_sum += track_bps as f64;
        self.fragments += 1;
        self.playhead_seq = seq;
        if self.started.is_none() && self.buffer >= STARTUP_BUFFER {
            self.started = Some(now);
        }
        self.next_seq = seq + 1;
        self.track = choose_track(
            self.throughput.unwrap_or(0.0),
            self.buffer,
            self.track,
            ladder,
        );
    }
}

/// Throughput rule with a buffer guard: the highest bitrate under 80% of the estimate; never
/// down while more than two fragments are buffered (a peer that answers late is not a slow
/// network), and up one step at a time.
fn choose_track(throughput: f64, buffer: f64, current: usize, ladder: &[u64]) -> usize {
    let fit = ladder
        .iter()
        .rposition(|&b| (b as f64) <= 0.8 * throughput)
        .unwrap_or(0);
    if fit > current {
        current + 1
    } else if fit < current && buffer < 4.0 {
        fit
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalls_are_counted_after_start() {
        let ladder = [500_000, 1_000_000];
        let t0 = Instant::from_secs(10);
        let mut p = Player::new(t0, 5, 0);
        p.inflight = Some((5, 0, t0));
        p.on_fragment(
            t0 + Duration::from_millis(500),
            5,
            500_000,
            125_000,
            2.0,
            &ladder,
        );
        assert_eq!(p.started, Some(t0 + Duration::from_millis(500)));
        // 2 s of media, next arrives 3 s later: 1 s stall.
        p.inflight = Some((6, 0, t0 + Duration::from_millis(600)));
        p.on_fragment(
            t0 + Duration::from_millis(3500),
            6,
            500_000,
            125_000,
            2.0,
            &ladder,
        );
        assert_eq!(p.stalled, Duration::from_secs(1));
    }

    #[test]
    fn a_seek_drops_the_buffer_and_its_wait_is_a_stall() {
        let ladder = [500_000];
        let t0 = Instant::from_secs(10);
        let mut p = Player::new(t0, 0, 0);
        p.inflight = Some((0, 0, t0));
        p.on_fragment(
            t0 + Duration::from_secs(1),
            0,
            500_000,
            125_000,
            2.0,
            &ladder,
        );
        p.inflight = Some((1, 0, t0 + Duration::from_secs(1)));
        // Seek 1 s into playback: the 1 s left in the buffer is gone, the request abandoned.
        p.seek(t0 + Duration::from_secs(2), 400);
        assert_eq!((p.next_seq, p.inflight, p.buffer()), (400, None, 0.0));
        p.inflight = Some((400, 0, t0 + Duration::from_secs(2)));
        p.on_fragment(
            t0 + Duration::from_millis(3500),
            400,
            500_000,
            125_000,
            2.0,
            &ladder,
        );
        assert_eq!(p.stalled, Duration::from_millis(1500));
        assert_eq!(p.seek_waits, vec![1.5]);
        assert_eq!(p.next_seq, 401);
    }

    #[test]
    fn abr_steps_up_and_guards_down() {
        let ladder = [500_000, 1_000_000, 2_000_000];
        assert_eq!(choose_track(10e6, 2.0, 0, &ladder), 1);
        assert_eq!(choose_track(0.3e6, 6.0, 2, &ladder), 2, "buffer guard");
        assert_eq!(choose_track(0.3e6, 1.0, 2, &ladder), 0);
    }
}
