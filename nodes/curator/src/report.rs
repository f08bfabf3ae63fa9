//! The report: one static HTML page beside the dataset, readable offline
//! (plots as inline SVG, thumbnails as inline PNG).

use std::collections::BTreeMap;

use crate::clips::{Clip, Curated, Reason};
use crate::offline::Source;
use crate::params::Params;
use s2r_image::Rgb;

use s2r_image::html::{escape as esc, png_data_uri};

fn img(t: &Rgb, caption: &str) -> String {
    format!(
        "<figure><img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
        png_data_uri(t),
        t.width,
        t.height,
        esc(caption),
        esc(caption)
    )
}

/// Horizontal bars of a distribution before and after curation.
fn bars(title: &str, before: &BTreeMap<String, usize>, after: &BTreeMap<String, usize>, target: Option<&BTreeMap<String, f64>>) -> String {
    let (nb, na) = (before.values().sum::<usize>().max(1) as f64, after.values().sum::<usize>().max(1) as f64);
    let keys: Vec<&String> = before.keys().chain(after.keys()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let row_h = 38;
    let h = keys.len() * row_h + 30;
    let mut s = format!("<h3>{}</h3><svg width=\"560\" height=\"{h}\" role=\"img\" aria-label=\"{}\">", esc(title), esc(title));
    for (i, k) in keys.iter().enumerate() {
        let y = 10 + i * row_h;
        let fb = *before.get(*k).unwrap_or(&0) as f64 / nb;
        let fa = *after.get(*k).unwrap_or(&0) as f64 / na;
        s.push_str(&format!("<text x=\"0\" y=\"{}\" class=\"lbl\">{}</text>", y + 14, esc(k)));
        s.push_str(&format!("<rect x=\"130\" y=\"{y}\" width=\"{:.1}\" height=\"14\" class=\"before\"/><text x=\"{:.1}\" y=\"{}\" class=\"num\">{:.0}% before</text>", fb * 300.0, 136.0 + fb * 300.0, y + 12, fb * 100.0));
        s.push_str(&format!("<rect x=\"130\" y=\"{}\" width=\"{:.1}\" height=\"14\" class=\"after\"/><text x=\"{:.1}\" y=\"{}\" class=\"num\">{:.0}% after</text>", y + 16, fa * 300.0, 136.0 + fa * 300.0, y + 28, fa * 100.0));
        if let Some(t) = target.and_then(|t| t.get(*k)) {
            let x = 130.0 + t * 300.0;
            s.push_str(&format!("<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{}\" y2=\"{}\" class=\"target\"/>", y - 2, y + 32));
        }
    }
    s.push_str("</svg>");
    s
}

/// The report page of a curation.
pub(crate) fn html(c: &Curated, sources: &[Source], p: &Params) -> String {
    let accepted: Vec<&Clip> = c.clips.iter().filter(|c| c.accepted).collect();
    let mut h = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sim2real curation report</title><style>\
         body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}\
         h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}h3{font-size:1.05em;margin-bottom:.2em}\
         table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}\
         .ok{color:#176a2c;font-weight:600}.no{color:#a31d1d;font-weight:600}\
         figure{display:inline-block;margin:4px;font-size:12px}figcaption{max-width:170px}\
         .before{fill:#9db4d6}.after{fill:#2b5ea7}.target{stroke:#d2691e;stroke-width:2;stroke-dasharray:4 2}.lbl,.num{font-size:12px}\
         .group{border:1px solid #ddd;padding:6px;margin:6px 0}</style></head><body>",
    );
    h.push_str("<h1>sim2real curation report</h1>");
    let frames: usize = sources.iter().map(|s| s.frames).sum();
    h.push_str(&format!(
        "<p>{} source bag(s), {frames} frames of camera <b>{}</b>, {} clips of up to {} s: <span class=\"ok\">{} accepted</span>, <span class=\"no\">{} rejected</span>.</p>",
        sources.len(),
        esc(&p.camera),
        c.clips.len(),
        p.clip_seconds,
        accepted.len(),
        c.clips.len() - accepted.len()
    ));
    for s in sources.iter().filter(|s| !s.damage.is_empty()) {
        h.push_str(&format!(
            "<p class=\"no\">{} is damaged: {}; curated up to the damage.</p>",
            esc(&s.bag.display().to_string()),
            esc(&s.damage.join("; "))
        ));
    }
    // Distributions.
    h.push_str(
        "<h2>Distributions before and after</h2><p>Light bars: every clip; dark bars: accepted clips; dashed line: the balance target.</p>",
    );
    let keys: std::collections::BTreeSet<&String> = c.clips.iter().flat_map(|c| c.tags.keys()).collect();
    for k in keys {
        let count = |set: &mut dyn Iterator<Item = &Clip>| {
            let mut m: BTreeMap<String, usize> = BTreeMap::new();
            for c in set {
                if let Some(v) = c.tags.get(k) {
                    *m.entry(v.clone()).or_default() += 1;
                }
            }
            m
        };
        let before = count(&mut c.clips.iter());
        let after = count(&mut accepted.iter().copied());
        h.push_str(&bars(k, &before, &after, p.balance.get(k)));
    }
    if !c.balance.is_empty() {
        h.push_str("<h3>Balance</h3><table><tr><th>tag</th><th>value</th><th>target</th><th>before</th><th>after</th><th>off by</th></tr>");
        for a in &c.balance {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{:.0}%</td><td>{:.0}%</td><td>{:.0}%</td><td>{:+.1} pp</td></tr>",
                esc(&a.key),
                esc(&a.value),
                a.target * 100.0,
                a.before * 100.0,
                a.after * 100.0,
                (a.after - a.target) * 100.0
            ));
        }
        h.push_str("</table>");
    }
    // Rejections.
    h.push_str("<h2>Rejected, by reason</h2>");
    let mut by_reason: BTreeMap<Reason, Vec<String>> = BTreeMap::new();
    let mut counts: BTreeMap<Reason, usize> = BTreeMap::new();
    for clip in &c.clips {
        for f in &clip.frames {
            for r in &f.reasons {
                *counts.entry(*r).or_default() += 1;
            }
        }
        for r in &clip.reasons {
            if matches!(r, Reason::SemanticDuplicate | Reason::Balance) {
                continue;
            }
            *counts.entry(*r).or_default() += 1;
            let list = by_reason.entry(*r).or_default();
            if list.len() < 6 {
                list.push(img(&clip.thumbnail, &format!("clip {}", clip.id)));
            }
        }
    }
    for e in &c.examples {
        by_reason.entry(e.reason).or_default().insert(0, img(&e.thumb, &format!("{} frame at {:.2} s", e.clip, e.stamp_ns as f64 * 1e-9)));
    }
    if counts.is_empty() {
        h.push_str("<p>No frame or clip failed a filter.</p>");
    }
    for (r, n) in &counts {
        h.push_str(&format!("<h3>{} ({n})</h3>", r.code()));
        if let Some(list) = by_reason.get(r) {
            h.push_str(&list.join(""));
        }
    }
    // Duplicate groups.
    h.push_str("<h2>Duplicate groups</h2>");
    let mut groups: BTreeMap<&str, Vec<&Clip>> = BTreeMap::new();
    for clip in &c.clips {
        if let Some(of) = &clip.duplicate_of {
            groups.entry(of.as_str()).or_default().push(clip);
        }
    }
    if groups.is_empty() {
        h.push_str("<p>No clip was within the deduplication distance of a kept one.</p>");
    }
    for (kept, dups) in groups {
        h.push_str("<div class=\"group\">");
        if let Some(k) = c.clips.iter().find(|c| c.id == kept) {
            h.push_str(&img(&k.thumbnail, &format!("kept: {}", k.id)));
        }
        for d in dups {
            h.push_str(&img(&d.thumbnail, &format!("dropped: {}", d.id)));
        }
        h.push_str("</div>");
    }
    // Every clip.
    h.push_str("<h2>Clips</h2><table><tr><th>clip</th><th>start s</th><th>frames (good)</th><th>tags</th><th>sharpness</th><th>motion</th><th>transfer</th><th>verdict</th></tr>");
    for clip in &c.clips {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{:.2}</td><td>{} ({})</td><td>{}</td><td>{:.0}</td><td>{:.2}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            esc(&clip.id),
            clip.start_ns as f64 * 1e-9,
            clip.frames.len(),
            clip.good_frames(),
            esc(&clip.tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")),
            clip.sharpness,
            clip.motion,
            clip.transfer.map(|t| format!("{t:.2}")).unwrap_or_default(),
            if clip.accepted { "ok" } else { "no" },
            if clip.accepted { "accepted".to_string() } else { clip.reasons.iter().map(|r| r.code()).collect::<Vec<_>>().join(", ") }
        ));
    }
    h.push_str("</table></body></html>\n");
    h
}
