//! `SegmentTemplate` identifiers (ISO/IEC 23009-1:2022 §5.3.9.4.4, Table 23).

/// Values substituted into a template.
pub(crate) struct Vars<'a> {
    pub(crate) representation_id: &'a str,
    pub(crate) number: u64,
    pub(crate) bandwidth: u64,
    pub(crate) time: u64,
}

/// Widest `%0Nd` accepted: wider is hostile, not a real manifest.
const MAX_WIDTH: usize = 32;

/// Expands `$RepresentationID$`, `$Number$`, `$Bandwidth$`, `$Time$` and `$$`, with the
/// `%0[width]d` format tag on the numeric ones.
///
/// §5.3.9.4.4: "$<Identifier>$ ... the identifier may be suffixed by a format tag
/// %0[width]d ... $$ is an escape sequence, i.e. "$$" is replaced with a single "$"."
pub(crate) fn expand(template: &str, v: &Vars<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(j) = after.find('$') else {
            return Err(format!("unterminated identifier in template {template:?}"));
        };
        let ident = &after[..j];
        rest = &after[j + 1..];
        if ident.is_empty() {
            out.push('$');
            continue;
        }
        let (name, fmt) = match ident.find('%') {
            Some(k) => (&ident[..k], Some(&ident[k..])),
            None => (ident, None),
        };
        let value = match name {
            "RepresentationID" => {
                if fmt.is_some() {
                    return Err("format tag on $RepresentationID$".into());
                }
                out.push_str(v.representation_id);
                continue;
            }
            "Number" => v.number,
            "Bandwidth" => v.bandwidth,
            "Time" => v.time,
            other => return Err(format!("unknown template identifier ${other}$")),
        };
        let width = match fmt {
            None => 0,
            Some(f) => {
                let digits = f
                    .strip_prefix("%0")
                    .and_then(|f| f.strip_suffix('d'))
                    .ok_or_else(|| format!("bad format tag {f:?}"))?;
                let w: usize = digits
                    .parse()
                    .map_err(|_| format!("bad width {digits:?}"))?;
                if w > MAX_WIDTH {
                    return Err(format!("width {w} over {MAX_WIDTH}"));
                }
                w
            }
        };
        use std::fmt::Write;
        let _ = write!(out, "{value:0width$}");
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_widths() {
        let v = Vars {
            representation_id: "v1",
            number: 42,
            bandwidth: 800_000,
            time: 90_000,
        };
        assert_eq!(
            expand("$RepresentationID$/$Number%05d$.m4s", &v).unwrap(),
            "v1/00042.m4s"
        );
        assert_eq!(
            expand("b$Bandwidth$-t$Time$-$$.mp4", &v).unwrap(),
            "b800000-t90000-$.mp4"
        );
        assert!(expand("$Number%0999999d$", &v).is_err());
        assert!(expand("$Nope$", &v).is_err());
        assert!(expand("$Number", &v).is_err());
    }
}
