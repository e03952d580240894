//! Inheritance of segment information down Period → AdaptationSet → Representation.
//!
//! ISO/IEC 23009-1:2022 §5.3.9.1: "Segment information ... may be present on different levels
//! ... the information on the lower level overrides the information on a higher level"; each
//! level may carry at most one of `SegmentBase`, `SegmentTemplate`, `SegmentList`. dash-mpd-core
//! parses each level separately and leaves the merge to its user.

use dash_mpd_core::{
    AdaptationSet, Period, Representation, SegmentBase, SegmentList, SegmentTemplate,
};
use hive_core::manifest::TrackKind;

/// The effective segment information of a representation.
pub(crate) enum SegmentInfo {
    Template(SegmentTemplate),
    List(SegmentList),
    Base(Option<SegmentBase>),
}

/// Overlays `inner` on `outer`, attribute by attribute.
fn merge_template(outer: Option<&SegmentTemplate>, inner: &SegmentTemplate) -> SegmentTemplate {
    let Some(o) = outer else {
        return inner.clone();
    };
    let mut m = inner.clone();
    m.media = m.media.or_else(|| o.media.clone());
    m.index = m.index.or_else(|| o.index.clone());
    m.initialization = m.initialization.or_else(|| o.initialization.clone());
    m.startNumber = m.startNumber.or(o.startNumber);
    m.endNumber = m.endNumber.or(o.endNumber);
    m.duration = m.duration.or(o.duration);
    m.timescale = m.timescale.or(o.timescale);
    m.presentationTimeOffset = m.presentationTimeOffset.or(o.presentationTimeOffset);
    m.Initialization = m.Initialization.or_else(|| o.Initialization.clone());
    m.SegmentTimeline = m.SegmentTimeline.or_else(|| o.SegmentTimeline.clone());
    m
}

fn merge_list(outer: Option<&SegmentList>, inner: &SegmentList) -> SegmentList {
    let Some(o) = outer else {
        return inner.clone();
    };
    let mut m = inner.clone();
    m.duration = m.duration.or(o.duration);
    m.timescale = m.timescale.or(o.timescale);
    m.Initialization = m.Initialization.or_else(|| o.Initialization.clone());
    m.SegmentTimeline = m.SegmentTimeline.or_else(|| o.SegmentTimeline.clone());
    if m.segment_urls.is_empty() {
        m.segment_urls = o.segment_urls.clone();
    }
    m
}

fn merge_base(outer: Option<&SegmentBase>, inner: &SegmentBase) -> SegmentBase {
    let Some(o) = outer else {
        return inner.clone();
    };
    let mut m = inner.clone();
    m.timescale = m.timescale.or(o.timescale);
    m.indexRange = m.indexRange.or_else(|| o.indexRange.clone());
    m.presentationTimeOffset = m.presentationTimeOffset.or(o.presentationTimeOffset);
    m.Initialization = m.Initialization.or_else(|| o.Initialization.clone());
    m
}

/// The segment information that applies to `rep`.
pub(crate) fn segment_info(p: &Period, a: &AdaptationSet, r: &Representation) -> SegmentInfo {
    let levels_t = [
        p.SegmentTemplate.as_ref(),
        a.SegmentTemplate.as_ref(),
        r.SegmentTemplate.as_ref(),
    ];
    let levels_l = [
        p.SegmentList.as_ref(),
        a.SegmentList.as_ref(),
        r.SegmentList.as_ref(),
    ];
    let levels_b = [
        p.SegmentBase.as_ref(),
        a.SegmentBase.as_ref(),
        r.SegmentBase.as_ref(),
    ];
    if levels_t.iter().any(Option::is_some) {
        let mut acc: Option<SegmentTemplate> = None;
        for l in levels_t.into_iter().flatten() {
            acc = Some(merge_template(acc.as_ref(), l));
        }
        if let Some(t) = acc {
            return SegmentInfo::Template(t);
        }
    }
    if levels_l.iter().any(Option::is_some) {
        let mut acc: Option<SegmentList> = None;
        for l in levels_l.into_iter().flatten() {
            acc = Some(merge_list(acc.as_ref(), l));
        }
        if let Some(l) = acc {
            return SegmentInfo::List(l);
        }
    }
    let mut acc: Option<SegmentBase> = None;
    for l in levels_b.into_iter().flatten() {
        acc = Some(merge_base(acc.as_ref(), l));
    }
    SegmentInfo::Base(acc)
}

/// §5.3.7 common attributes: a Representation inherits its AdaptationSet's.
pub(crate) fn kind(a: &AdaptationSet, r: &Representation) -> TrackKind {
    super::kind_of(
        r.contentType.as_deref().or(a.contentType.as_deref()),
        r.mimeType.as_deref().or(a.mimeType.as_deref()),
        r.codecs.as_deref().or(a.codecs.as_deref()),
    )
}
