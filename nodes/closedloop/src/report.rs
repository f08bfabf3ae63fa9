//! The evaluation's report: `report.html` (one static page, readable
//! offline: the summary table, then per episode its outcome, a thumbnail and
//! SVG plots of speed and of the gap to the nearest pedestrian) and
//! `results.json` (the summaries and every episode's figures).

use std::fmt::Write as _;
use std::path::Path;

use s2r_image::html::{escape, png_data_uri};
use serde::Serialize;

use crate::episode::{Episode, Sample};
use crate::score::{Estimate, Summary};
use crate::ClosedLoopError;

#[derive(Serialize)]
struct Results<'a> {
    summaries: &'a [Summary],
    episodes: &'a [Episode],
}

fn est(e: &Estimate, percent: bool) -> String {
    let k = if percent { 100.0 } else { 1.0 };
    if e.value.is_nan() {
        return "–".into();
    }
    if percent {
        format!("{:.1} % [{:.1}, {:.1}]", e.value * k, e.low * k, e.high * k)
    } else {
        format!("{:.3} [{:.3}, {:.3}]", e.value, e.low, e.high)
    }
}

/// The Markdown tables of summaries (for the README and the terminal):
/// driving scenarios in one, arm scenarios in another.
pub fn markdown(summaries: &[Summary]) -> String {
    let (arms, drives): (Vec<&Summary>, Vec<&Summary>) = summaries.iter().partition(|m| m.arm.is_some());
    let mut s = String::new();
    if !drives.is_empty() {
        s.push_str(&driving_table(&drives));
    }
    if !arms.is_empty() {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(&arm_table(&arms));
    }
    s
}

fn arm_table(summaries: &[&Summary]) -> String {
    let mut s = String::from(
        "| scenario | driver | episodes | task score | cup placed | cup off the table | cup knocked over | grasped | median place error | missed grasps / ep. |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for m in summaries {
        let Some(a) = &m.arm else { continue };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} |",
            m.scenario,
            m.driver,
            m.episodes,
            est(&m.driving_score, false),
            est(&a.placed, true),
            est(&a.dropped, true),
            est(&a.knocked_over, true),
            est(&a.grasped, true),
            a.median_place_error_m.map_or("–".into(), |v| format!("{:.1} cm", v * 100.0)),
            a.missed_grasps,
        );
    }
    s
}

fn driving_table(summaries: &[&Summary]) -> String {
    let mut s = String::from(
        "| scenario | driver | episodes | driving score | route completion | pedestrian collisions | any collision | VRU impact speed | median min TTC | hard brakes / ep. | lane infr. / ep. |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for m in summaries {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} |",
            m.scenario,
            m.driver,
            m.episodes,
            est(&m.driving_score, false),
            est(&m.route_completion, false),
            est(&m.vulnerable_collisions, true),
            est(&m.collisions, true),
            m.vulnerable_impact_speed.map_or("–".into(), |v| format!("{v:.1} m/s")),
            m.median_min_ttc.map_or("–".into(), |v| format!("{v:.2} s")),
            m.hard_brakes,
            m.lane_infractions,
        );
    }
    s
}

/// A polyline plot of `y(t)` with its axis range, as inline SVG.
fn plot(title: &str, unit: &str, trace: &[Sample], y: impl Fn(&Sample) -> Option<f32>, marks: &[f64]) -> String {
    let (w, h, pad) = (320.0f32, 110.0f32, 26.0f32);
    let t_max = trace.last().map_or(1.0, |s| s.t).max(1e-3);
    let ys: Vec<(f32, f32)> = trace.iter().filter_map(|s| y(s).map(|v| (s.t, v))).collect();
    let y_max = ys.iter().map(|p| p.1).fold(0.0f32, f32::max).max(1.0);
    let x = |t: f32| pad + (w - pad - 6.0) * t / t_max;
    let yy = |v: f32| h - pad + 8.0 - (h - pad - 4.0) * (v.clamp(0.0, y_max) / y_max);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\"><rect width=\"100%\" height=\"100%\" fill=\"#fafafa\"/>",
        escape(title)
    );
    let _ = write!(svg, "<text x=\"{pad}\" y=\"12\" font-size=\"11\">{} ({})</text>", escape(title), escape(unit));
    let _ = write!(
        svg,
        "<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/><text x=\"2\" y=\"{}\" font-size=\"10\">{y_max:.0}</text><text x=\"{}\" y=\"{}\" font-size=\"10\">{t_max:.0} s</text>",
        h - pad + 8.0,
        w - 6.0,
        h - pad + 8.0,
        yy(y_max) + 4.0,
        w - 34.0,
        h - 4.0
    );
    for m in marks {
        let mx = x(*m as f32);
        let _ = write!(svg, "<line x1=\"{mx}\" y1=\"14\" x2=\"{mx}\" y2=\"{}\" stroke=\"#d33\" stroke-dasharray=\"3,2\"/>", h - pad + 8.0);
    }
    let mut path = String::new();
    let mut gap = true;
    for s in trace {
        match y(s) {
            Some(v) => {
                let _ = write!(path, "{}{:.1},{:.1} ", if gap { "M" } else { "L" }, x(s.t), yy(v));
                gap = false;
            }
            None => gap = true,
        }
    }
    let _ = write!(svg, "<path d=\"{path}\" fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.5\"/></svg>");
    svg
}

/// Writes `report.html` and `results.json` into `dir`.
pub fn write(dir: &Path, summaries: &[Summary], episodes: &[Episode]) -> Result<(), ClosedLoopError> {
    let err = |path: &Path, e: std::io::Error| ClosedLoopError::Write { path: path.into(), message: e.to_string() };
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    let json_path = dir.join("results.json");
    let json = serde_json::to_string_pretty(&Results { summaries, episodes })
        .map_err(|e| ClosedLoopError::Write { path: json_path.clone(), message: e.to_string() })?;
    std::fs::write(&json_path, json).map_err(|e| err(&json_path, e))?;

    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Closed-loop evaluation</title><style>\
         body{font-family:sans-serif;margin:20px;color:#222}table{border-collapse:collapse;margin:8px 0}\
         td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;text-align:left;vertical-align:top}\
         .fail{background:#fdecea}.ok{background:#edf7ed}img{display:block}</style></head><body>\
         <h1>Closed-loop evaluation</h1><p>Driving score = route completion × penalties (pedestrians, children and cyclists 0.50, \
         vehicles 0.60, other objects 0.65, lane infractions 0.80 each); for an arm, task score = progress (¼ each: grasped, lifted,          over the spot, placed upright) × 0.50 per cup off the table × 0.65 per cup knocked over; 95 % intervals in brackets (normal approximation for means, \
         Wilson for rates).</p><h2>Summary</h2><table><tr><th>scenario</th><th>driver</th><th>episodes</th><th>driving score</th>\
         <th>route completion</th><th>pedestrian collisions</th><th>any collision</th><th>median min TTC</th><th>episodes/min</th></tr>",
    );
    for m in summaries {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
            escape(&m.scenario),
            escape(&m.driver),
            m.episodes,
            est(&m.driving_score, false),
            est(&m.route_completion, false),
            est(&m.vulnerable_collisions, true),
            est(&m.collisions, true),
            m.median_min_ttc.map_or("–".into(), |v| format!("{v:.2} s")),
            m.episodes_per_minute
        );
    }
    h.push_str("</table><pre>");
    h.push_str(&escape(&markdown(summaries)));
    h.push_str("</pre><h2>Episodes</h2><table><tr><th>scenario / driver / seed</th><th>outcome</th><th>picture</th><th>speed</th><th>nearest pedestrian / cup to its spot</th></tr>");
    for e in episodes {
        let picture = e.thumbnail.as_ref().map_or(String::new(), |t| {
            format!("<img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"seed {}\">", png_data_uri(t), t.width, t.height, e.seed)
        });
        if let Some(a) = &e.arm {
            let _ = write!(
                h,
                "<tr class=\"{}\"><td>{} / {} / seed {}</td><td>{:?}, reached {:?}, score {:.3}<br>cup {:.1} cm from the spot; {} dropped, {} knocked over, {} missed grasps</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if e.failed() { "fail" } else { "ok" },
                escape(&e.scenario),
                escape(&e.driver),
                e.seed,
                e.outcome,
                a.stage,
                e.driving_score,
                a.place_error_m * 100.0,
                a.cups_dropped,
                a.cups_knocked_over,
                a.missed_grasps,
                picture,
                plot("tool speed", "m/s", &e.trace, |s| Some(s.speed), &[]),
                plot("cup to its spot", "m", &e.trace, |s| s.cup_to_spot, &[]),
            );
            continue;
        }
        let hits: Vec<String> = e.collisions.iter().map(|c| format!("{} at {:.1} m/s (t = {:.1} s)", c.class, c.speed, c.time)).collect();
        let marks: Vec<f64> = e.collisions.iter().map(|c| c.time).collect();
        let _ = write!(
            h,
            "<tr class=\"{}\"><td>{} / {} / seed {}</td><td>{:?}, route {:.0} %, score {:.3}<br>{}<br>min TTC {}, hard brakes {}, lane infractions {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if e.failed() { "fail" } else { "ok" },
            escape(&e.scenario),
            escape(&e.driver),
            e.seed,
            e.outcome,
            e.route_completion * 100.0,
            e.driving_score,
            if hits.is_empty() { "no collision".into() } else { escape(&hits.join("; ")) },
            e.min_ttc.map_or("–".into(), |v| format!("{v:.2} s")),
            e.hard_brakes,
            e.lane_infractions,
            picture,
            plot("speed", "m/s", &e.trace, |s| Some(s.speed), &marks),
            plot("gap to nearest pedestrian", "m", &e.trace, |s| s.vru_gap.map(|g| g.min(30.0)), &marks),
        );
    }
    h.push_str("</table></body></html>\n");
    let html_path = dir.join("report.html");
    std::fs::write(&html_path, h).map_err(|e| err(&html_path, e))
}
