//! RFC 8216 §4.2 attribute lists, for the tags m3u8-rs passes through as unknown (LL-HLS).

/// Iterates `NAME=value` pairs of an attribute list. Quoted values come without their quotes.
///
/// RFC 8216 §4.2: "An attribute-list is a comma-separated list of attribute/value pairs with no
/// whitespace." A quoted-string may contain commas.
pub(crate) fn attributes(list: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = list;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let (name, after) = match rest.split_once('=') {
                Some(x) => x,
                None => {
                    rest = "";
                    return None;
                }
            };
            let (value, next) = if let Some(q) = after.strip_prefix('"') {
                match q.split_once('"') {
                    Some((v, n)) => (v, n.strip_prefix(',').unwrap_or(n)),
                    None => (q, ""),
                }
            } else {
                match after.split_once(',') {
                    Some((v, n)) => (v, n),
                    None => (after, ""),
                }
            };
            rest = next;
            let name = name.trim().trim_start_matches(',');
            if !name.is_empty() {
                return Some((name, value));
            }
        }
    })
}

/// The value of attribute `name`, if present.
pub(crate) fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    attributes(list).find(|(n, _)| *n == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_commas_and_missing_values() {
        let v: Vec<_> = attributes(r#"DURATION=0.5,URI="a,b.mp4",INDEPENDENT=YES"#).collect();
        assert_eq!(
            v,
            vec![
                ("DURATION", "0.5"),
                ("URI", "a,b.mp4"),
                ("INDEPENDENT", "YES")
            ]
        );
        assert_eq!(attribute(r#"URI="x"#, "URI"), Some("x"));
        assert_eq!(attributes("garbage").count(), 0);
    }
}
