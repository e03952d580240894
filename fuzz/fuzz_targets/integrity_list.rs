//! Feeds arbitrary bytes to `SignedList::verify` (nothing may panic, and nothing unsigned may
//! come back), and signs lists built from the input to check that they verify to themselves
//! and that any single flipped byte before the signature is refused.

#![no_main]

use hive_core::ContentHash;
use hive_core::integrity::{ListEntry, PublisherKey, SignedList};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = PublisherKey::from_seed([7; 32]);
    // 1. The input as a list: it must not verify (the fuzzer cannot sign).
    assert!(SignedList::verify(data, &key.public()).is_err());
    // 2. A list made of the input's text, signed: verifies to itself.
    let text = String::from_utf8_lossy(data);
    let entries: Vec<ListEntry> = text
        .split(['\n', '\r', ' ', '\t'])
        .filter(|u| !u.is_empty() && u.len() <= 4096)
        .take(64)
        .map(|u| ListEntry {
            uri: u.to_string(),
            range: None,
            hash: ContentHash::of(u.as_bytes()),
        })
        .collect();
    let list = SignedList {
        seq: data.len() as u64,
        entries,
    };
    let signed = list.sign(&key);
    let back = SignedList::verify(&signed, &key.public()).expect("a signed list verifies");
    assert_eq!(back.entries.len(), list.entries.len());
    for (a, b) in back.entries.iter().zip(&list.entries) {
        assert_eq!(a.hash, b.hash);
    }
    // 3. One flipped byte (chosen by the input) before the signature line: refused.
    if let Some(&b) = data.first() {
        let body = signed.len() - 134;
        let i = (usize::from(b) * 7919) % body.max(1);
        let mut bad = signed.clone();
        bad[i] ^= 1 + (b & 0x7f);
        assert!(
            SignedList::verify(&bad, &key.public()).is_err(),
            "flipped byte {i} accepted"
        );
    }
});
