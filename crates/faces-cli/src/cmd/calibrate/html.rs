//! `report.html`: one self-contained page (inline CSS and SVG, thumbnails
//! as data: URIs) with every figure of a [`Report`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use faces_core::eval::calibrate::Rate;
use faces_core::eval::report::{PairRecord, Report};
use faces_core::image::ImageLimits;
use faces_core::BBox;
use rayon::prelude::*;

use crate::html::{escape, face_thumbnail};

/// Height of a face thumbnail, in pixels.
const THUMBNAIL: u32 = 112;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
th:first-child,td:first-child{text-align:left}.warn{background:#fff3cd;border-left:5px solid #e90;padding:.6em 1em}\
.figures{display:flex;flex-wrap:wrap;gap:1em}.figures svg{border:1px solid #ddd;max-width:100%;height:auto}\
.pairs{display:flex;flex-wrap:wrap;gap:1em}.pair{border:1px solid #ccc;padding:.5em;font-size:.85em;width:250px}\
.pair img{height:112px;margin-right:4px}.path{word-break:break-all;color:#555}.small{color:#a60}\
.none{display:inline-block;width:112px;height:112px;background:#eee}";

/// Counts the page's figures and pictures once loaded, and writes the count
/// into #render-check, so a reader (or a test in a browser) can see at once
/// whether every plot and thumbnail rendered.
const RENDER_CHECK: &str = "<script>window.addEventListener('load',function(){\
var imgs=[].slice.call(document.images),svgs=[].slice.call(document.querySelectorAll('svg'));\
var ok=imgs.filter(function(i){return i.complete&&i.naturalWidth>0}).length;\
var drawn=svgs.filter(function(s){var b=s.getBoundingClientRect();return b.width>0&&b.height>0}).length;\
document.getElementById('render-check').textContent='rendered: '+drawn+' of '+svgs.length+' figures, '+ok+' of '+imgs.length+' thumbnails';});</script>";

pub fn page(report: &Report, boxes: &HashMap<String, BBox>) -> String {
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>faces report: {0}</title><style>{STYLE}</style></head><body>\n<h1>faces report: {0}</h1>\n",
        escape(&report.title)
    );
    let _ = writeln!(
        page,
        "<p>Recogniser <b>{}</b>; {} photos, {} without a usable face; made {}. <span id=\"render-check\">rendered: (needs a browser with scripts)</span></p>",
        escape(&report.model),
        report.samples,
        report.without_face,
        escape(&report.created)
    );
    page += &calibration(report);
    page += "<h2>Figures</h2>\n<div class=\"figures\">\n";
    page += &report.roc_chart().svg();
    page += &report.det_chart().svg();
    page += &report.histogram_chart().svg();
    if let Some(cmc) = report.cmc_chart() {
        page += &cmc.svg();
    }
    page += "</div>\n";
    page += &threshold_table(report);
    page += &held_out(report);
    page += &groups(report);
    page += &identification(report);
    page += &pairs_section(
        "Worst false matches",
        "Different people the recogniser found most alike, above the threshold: the pairs that would be confused.",
        &report.worst_false_matches,
        boxes,
    );
    page += &pairs_section(
        "Worst false non-matches",
        "Photos of the same person the recogniser found least alike, below the threshold: the pairs that would be missed.",
        &report.worst_false_non_matches,
        boxes,
    );
    page + RENDER_CHECK + "\n</body></html>\n"
}

fn interval(r: &Rate) -> String {
    format!("{:.2e} <small>[{:.1e}, {:.1e}]</small> ({} of {})", r.value, r.low, r.high, r.events, r.trials)
}

fn calibration(report: &Report) -> String {
    let c = &report.calibration;
    let mut s = String::from("<h2>Calibration</h2>\n");
    if !c.warning.is_empty() {
        let _ = writeln!(s, "<p class=\"warn\"><b>Warning:</b> {}</p>", escape(&c.warning));
    }
    let _ = writeln!(
        s,
        "<table><tr><th>target FMR</th><td>{:.0e}</td></tr><tr><th>threshold</th><td>{:.4} <small>[{:.4}, {:.4}]</small></td></tr>\
         <tr><th>FMR at it</th><td>{}</td></tr><tr><th>FNMR at it</th><td>{}</td></tr>\
         <tr><th>pairs</th><td>{} genuine, {} impostor</td></tr></table>",
        c.target_fmr,
        c.threshold,
        c.threshold_low,
        c.threshold_high,
        interval(&c.fmr),
        interval(&c.fnmr),
        c.genuine_pairs,
        c.impostor_pairs
    );
    let o = &report.operating;
    let _ = writeln!(
        s,
        "<p>Decisions below are made at <b>{:.4}</b> ({}): FMR {:.2e}, FNMR {:.2e}. Intervals are 95% bootstrap intervals over the pairs; with no error at all the upper end is 3/n (the rule of three).</p>",
        o.threshold,
        escape(&o.source),
        o.fmr,
        o.fnmr
    );
    s
}

fn threshold_table(report: &Report) -> String {
    let mut s = String::from("<h2>Error rates by threshold</h2>\n<table><tr><th>threshold</th><th>FMR</th><th>FNMR</th></tr>\n");
    for row in &report.table {
        let mark = if row.threshold == report.operating.threshold { " <b>(operating)</b>" } else { "" };
        let _ = writeln!(s, "<tr><td>{:.4}{mark}</td><td>{:.2e}</td><td>{:.2e}</td></tr>", row.threshold, row.fmr, row.fnmr);
    }
    s + "</table>\n"
}

fn held_out(report: &Report) -> String {
    let Some(h) = &report.held_out else { return String::new() };
    let mut s = format!(
        "<h2>Held-out folds</h2>\n<p>For each fold, the threshold for the target FMR is chosen on the other folds; the FMR measured on the fold itself fell within the interval estimated on the other folds in <b>{} of {}</b> folds, and the fold's own interval contained the target in <b>{} of {}</b>. Pooled over all folds, held out: FMR {}, FNMR {}.</p>\n",
        h.within_interval,
        h.folds.len(),
        h.covering_target,
        h.folds.len(),
        interval(&h.pooled_fmr),
        interval(&h.pooled_fnmr)
    );
    s += "<table><tr><th>fold</th><th>threshold</th><th>FMR where chosen</th><th>FMR held out</th><th>FNMR held out</th><th>within the chosen interval</th><th>covers the target</th></tr>\n";
    for f in &h.folds {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{:.4}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            f.fold + 1,
            f.threshold,
            interval(&f.calibration_fmr),
            interval(&f.held_out_fmr),
            interval(&f.held_out_fnmr),
            if f.within_interval { "yes" } else { "no" },
            if f.covers_target { "yes" } else { "no" }
        );
    }
    s + "</table>\n"
}

fn groups(report: &Report) -> String {
    if report.groups.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "<h2>By group</h2>\n<p>At threshold {:.4}. Groups come from your labels, never from the faces. FMR counts impostor pairs whose two subjects are both in the group; FNMR the group's genuine pairs. Groups marked too small are left out of the worst/best ratios.</p>\n",
        report.operating.threshold
    );
    for a in &report.groups {
        let _ = writeln!(
            s,
            "<h3>{}</h3>\n<p>FMR worst/best: <b>{}</b>; FNMR worst/best: <b>{}</b>; FMR between different groups: {}.</p>",
            escape(&a.attribute),
            escape(&a.fmr_ratio.describe()),
            escape(&a.fnmr_ratio.describe()),
            interval(&a.cross_group_fmr)
        );
        s += "<table><tr><th>group</th><th>subjects</th><th>FMR</th><th>FNMR</th><th>note</th></tr>\n";
        for g in &a.groups {
            let note = if g.too_small { format!("<span class=\"small\">too small: {}</span>", escape(&g.note)) } else { String::new() };
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{note}</td></tr>",
                escape(&g.group),
                g.subjects,
                interval(&g.fmr),
                interval(&g.fnmr)
            );
        }
        s += "</table>\n";
    }
    s
}

fn identification(report: &Report) -> String {
    let Some(id) = &report.identification else { return String::new() };
    let mut s = format!(
        "<h2>Identification</h2>\n<p>Each subject's first photo enrolled ({} subjects), their other photos searched as mated probes ({}), and subjects with a single photo searched as strangers ({} non-mated probes). Rank-1: <b>{:.2}%</b>. At the operating threshold: FNIR {:.2}%, FPIR {}.</p>\n",
        id.enrolled_subjects,
        id.mated_probes,
        id.non_mated_probes,
        100.0 * id.rank1,
        100.0 * id.fnir,
        if id.fpir.is_nan() { "n/a (no strangers)".to_string() } else { format!("{:.2}%", 100.0 * id.fpir) }
    );
    if !id.fnir_at_fpir.is_empty() {
        s += "<table><tr><th>FPIR</th><th>threshold</th><th>FNIR</th></tr>\n";
        for f in &id.fnir_at_fpir {
            let _ = writeln!(s, "<tr><td>{}</td><td>{:.4}</td><td>{:.2}%</td></tr>", f.fpir, f.threshold, 100.0 * f.fnir);
        }
        s += "</table>\n";
    }
    s
}

fn pairs_section(title: &str, intro: &str, pairs: &[PairRecord], boxes: &HashMap<String, BBox>) -> String {
    let mut s = format!("<h2>{title}</h2>\n<p>{intro}</p>\n");
    if pairs.is_empty() {
        return s + "<p>None at this threshold.</p>\n";
    }
    let limits = ImageLimits::default();
    let thumb = |path: &str| boxes.get(path).and_then(|b| face_thumbnail(Path::new(path), b, THUMBNAIL, &limits));
    let pictures: Vec<(Option<String>, Option<String>)> = pairs.par_iter().map(|p| (thumb(&p.a), thumb(&p.b))).collect();
    s += "<div class=\"pairs\">\n";
    for (p, (a, b)) in pairs.iter().zip(pictures) {
        let img = |data: Option<String>| match data {
            Some(d) => format!("<img src=\"data:image/jpeg;base64,{d}\" alt=\"face\">"),
            None => "<span class=\"none\"></span>".to_string(),
        };
        let _ = writeln!(
            s,
            "<div class=\"pair\">{}{}<br>similarity <b>{:.4}</b><br>{} / {}<div class=\"path\">{}<br>{}</div></div>",
            img(a),
            img(b),
            p.score,
            escape(&p.subject_a),
            escape(&p.subject_b),
            escape(&p.a),
            escape(&p.b)
        );
    }
    s + "</div>\n"
}
