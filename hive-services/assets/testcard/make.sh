#!/usr/bin/env bash
# The origin's test card (`hive origin`, `hive demo`): one 2-second GOP per rung of the default
# ladder, H.264 High@3.1 video (testsrc2, 25 fps, one IDR at the start, no B-frames) and AAC-LC
# audio (a 440 Hz tone, mono, 64 kHz: 125 frames of 1024 samples are exactly the 2 s of
# video), in MPEG-TS for HLS, and in fragmented MP4 for DASH (video per rung, audio once; each
# file an init segment, ftyp + moov, and one fragment, moof + mdat). Made once with this script (ffmpeg 5.1,
# Debian 12) and committed: the origin needs no ffmpeg at run time. It loops them, rewriting
# PTS/DTS, PCR and continuity counters, and pads each fragment with null packets to its
# bitrate (hive-services/src/origin/testcard.rs). Video bitrates sit below the default ladder's
# (0.5/1/2 Mbit/s, ±20%) so that padding, not the picture, sets a fragment's size.
#
#   cd hive-services/assets/testcard && ./make.sh
set -euo pipefail
cd "$(dirname "$0")"
make() { # name size video-kbit/s
    ffmpeg -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc2=size=$2:rate=25:duration=2" \
        -f lavfi -i "sine=frequency=440:sample_rate=64000:duration=2.1" \
        -c:v libx264 -profile:v high -level 3.1 -pix_fmt yuv420p -preset medium \
        -g 50 -keyint_min 50 -sc_threshold 0 -bf 0 -threads 1 \
        -b:v "$3k" -maxrate "$3k" -bufsize "$(($3 * 2))k" \
        -c:a aac -b:a 48k -ac 1 -frames:a 125 \
        -f mpegts -mpegts_flags +resend_headers "$1.ts"
}
fmp4() { # name size video-kbit/s
    ffmpeg -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc2=size=$2:rate=25:duration=2" \
        -c:v libx264 -profile:v high -level 3.1 -pix_fmt yuv420p -preset medium \
        -g 50 -keyint_min 50 -sc_threshold 0 -bf 0 -threads 1 \
        -b:v "$3k" -maxrate "$3k" -bufsize "$(($3 * 2))k" \
        -f mp4 -movflags +empty_moov+default_base_moof+skip_trailer -frag_duration 3000000 "$1.mp4"
}
make 360p 640x360 240
make 540p 960x540 560
make 720p 1280x720 1150
fmp4 360p 640x360 240
fmp4 540p 960x540 560
fmp4 720p 1280x720 1150
ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "sine=frequency=440:sample_rate=64000:duration=2.1" \
    -c:a aac -b:a 48k -ac 1 -frames:a 125 \
    -f mp4 -movflags +empty_moov+default_base_moof+skip_trailer -frag_duration 3000000 audio.mp4
ls -l ./*.ts ./*.mp4
