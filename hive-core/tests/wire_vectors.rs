//! Golden byte vectors: one per message type. Encoding a sample must give exactly its vector,
//! and decoding the vector must give the sample back. A change here is a wire-format change.

#[path = "common/samples.rs"]
mod samples;

use bytes::Bytes;
use hive_core::wire::{Decoded, Message, WireLimits, decode_frame};

fn check(name: &str, msg: Message, vector: &str) {
    let expected = samples::unhex(&strip_notes(vector));
    let encoded = msg.encode_to_vec();
    assert_eq!(
        samples::hex(&encoded),
        samples::hex(&expected),
        "{name}: encoding differs from the golden vector"
    );
    assert_eq!(msg.encoded_len(), expected.len(), "{name}: encoded_len");
    let decoded = decode_frame(&Bytes::from(expected), &WireLimits::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(decoded, Decoded::Message(msg), "{name}: decoding differs");
}

// Layout: length prefix | version | type | body fields (see the `wire` module docs); notes
// after `#`.
const C32: &str = "2222222222222222222222222222222222222222222222222222222222222222";

#[test]
fn hello() {
    let v = format!(
        "0000005a 01 01
         01 01                   # versions: [1]
         {peer}                  # peer id
         {C32}                   # content id
         01                      # role: supernode
         a8c301                  # upload: 25000 kbit/s
         07 8f19 08 70617269732d6871 4652   # locality: AS 3215, site \"paris-hq\", FR
         03 746f6b               # token: \"tok\"",
        peer = "11".repeat(32)
    );
    check("hello", samples::hello(), &v);
}

#[test]
fn have() {
    check(
        "have",
        samples::have(),
        "00000010 01 02
         01 02             # snapshot, 2 tracks
         00 64 01 00 1c    # track 0, floor 100, 1 block: gap 0, run of 15
         01 64 01 00 03 5555   # track 1, floor 100, 1 block: gap 0, 2-byte bitmap 100,102..114",
    );
}

#[test]
fn request() {
    let v = format!(
        "0000002b 01 03
         07                      # request id
         {C32} 02 9108 00        # fragment: content, track 2, seq 1041, no range
         dc0b                    # deadline 1500 ms
         01                      # priority
         00                      # resume offset"
    );
    check("request", samples::request(), &v);
}

#[test]
fn data() {
    let v = format!(
        "00000053 01 04
         07                      # request id
         {C32} 02 9108 01 8020 0c   # fragment: track 2, seq 1041, range 4096+12
         0c                      # total length
         06                      # offset
         3aa61c409fd7717c9d9c639202af2fae470c0ef669be7ba2caea5779cb534e9d   # BLAKE3(\"hello world!\")
         06 776f726c6421         # chunk: \"world!\""
    );
    check("data", samples::data(), &v);
}

#[test]
fn cancel() {
    check("cancel", samples::cancel(), "00000003 01 05 07");
}

#[test]
fn reject() {
    check("reject", samples::reject(), "00000004 01 06 07 00");
    // Unknown reason codes are kept.
    check(
        "reject_unknown_reason",
        samples::reject_unknown_reason(),
        "00000004 01 06 07 c8",
    );
}

#[test]
fn choke_unchoke() {
    check("choke", Message::Choke, "00000002 01 07");
    check("unchoke", Message::Unchoke, "00000002 01 08");
}

#[test]
fn peer_exchange() {
    let v = format!(
        "0000006a 01 09
         02                      # 2 peers
         {p1} 00 00 00           # id, role peer, 0 kbit/s, no locality
         01 04 c0000201 1151     # 1 address: 192.0.2.1:4433
         {p2} 03 a08d06          # id, role seeder, 100000 kbit/s
         01 f4f703               # locality: AS 64500
         01 06 20010db8000000000000000000000001 01bb   # 1 address: [2001:db8::1]:443",
        p1 = "33".repeat(32),
        p2 = "44".repeat(32)
    );
    check("peer_exchange", samples::peer_exchange(), &v);
}

#[test]
fn bye() {
    check("bye", samples::bye(), "00000007 01 0a 00 03 627965");
}

#[test]
fn ping_pong() {
    check("ping", samples::ping(), "0000000a 01 0b 0102030405060708");
    check("pong", samples::pong(), "0000000a 01 0c 0102030405060708");
}

#[test]
fn unknown_type_is_skipped() {
    let frame = Bytes::from(samples::unhex("00000005 01 7f 616263"));
    assert_eq!(
        decode_frame(&frame, &WireLimits::default()),
        Ok(Decoded::Unknown { kind: 0x7f, len: 9 })
    );
}

/// Drops the notes (from `#` to the end of a line).
fn strip_notes(v: &str) -> String {
    v.lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}
