//! `report.html`: one self-contained page (inline CSS, thumbnails as data:
//! URIs) showing every dropped or flagged photo with why, grouped by reason.

use std::fmt::Write as _;
use std::path::Path;

use faces_core::clean::{CleanReport, Finding, ImageReport, Reason, Verdict};
use faces_core::draw;
use faces_core::image::{self, ImageLimits};
use rayon::prelude::*;

use crate::html::{escape, jpeg_base64};
use crate::output;

/// Longest side of a thumbnail, in pixels.
const THUMBNAIL: u32 = 160;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left}\
.cards{display:flex;flex-wrap:wrap;gap:1em}.card{width:240px;border:1px solid #ccc;padding:.5em;font-size:.85em}\
.card img{display:block;max-width:100%;margin-bottom:.4em}.drop{border-left:5px solid #c33}.flag{border-left:5px solid #e90}\
.path{word-break:break-all;color:#555}.none{width:160px;height:100px;background:#eee;display:flex;align-items:center;justify-content:center}";

/// The whole page. Thumbnails are made in parallel on the current thread pool.
pub fn report(review: &CleanReport, dataset: &Path, limits: &ImageLimits) -> String {
    let shown: Vec<&ImageReport> = review.images.iter().filter(|i| i.verdict != Verdict::Keep).collect();
    let bar = output::progress(shown.len(), "thumbnails");
    let thumbnails: Vec<Option<String>> = shown
        .par_iter()
        .map(|i| {
            let t = thumbnail(i, limits);
            bar.inc(1);
            t
        })
        .collect();
    bar.finish_and_clear();
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>faces clean: {}</title><style>{STYLE}</style></head><body>\n",
        escape(&dataset.display().to_string())
    );
    page += &format!("<h1>faces clean: {}</h1>\n", escape(&dataset.display().to_string()));
    page += &summary_table(review);
    for reason in Reason::ALL {
        let cards: Vec<String> = shown
            .iter()
            .zip(&thumbnails)
            .filter(|(i, _)| main_reason(i) == Some(reason))
            .map(|(i, t)| card(i, t.as_deref()))
            .collect();
        if !cards.is_empty() {
            page += &format!("<h2 id=\"{}\">{} ({})</h2>\n<div class=\"cards\">\n{}</div>\n", reason.code(), reason.code(), cards.len(), cards.concat());
        }
    }
    page + "</body></html>\n"
}

/// The reason a photo is shown under: its first dropping reason, else its first.
fn main_reason(image: &ImageReport) -> Option<Reason> {
    image.findings.iter().map(|f| f.reason).min_by_key(|r| (!r.drops(), *r))
}

fn summary_table(review: &CleanReport) -> String {
    let s = &review.summary;
    let mut out = format!(
        "<p>{} photos: {} kept, {} flagged, {} dropped; {} other files skipped. Your files were not changed.</p>\n",
        s.photos, s.kept, s.flagged, s.dropped, review.skipped.len()
    );
    out += "<table><tr><th>reason</th><th>verdict</th><th>photos</th></tr>\n";
    for (reason, n) in &s.by_reason {
        let verdict = if reason.drops() { "drop" } else { "flag" };
        let _ = writeln!(out, "<tr><td><a href=\"#{0}\">{0}</a></td><td>{verdict}</td><td>{n}</td></tr>", reason.code());
    }
    out + "</table>\n"
}

fn card(image: &ImageReport, thumbnail: Option<&str>) -> String {
    let class = if image.verdict == Verdict::Drop { "drop" } else { "flag" };
    let picture = match thumbnail {
        Some(data) => format!("<img src=\"data:image/jpeg;base64,{data}\" alt=\"\">"),
        None => "<div class=\"none\">no preview</div>".to_string(),
    };
    let findings: String = image.findings.iter().map(finding_line).collect();
    format!(
        "<div class=\"card {class}\">{picture}<b>{}</b> ({class})<div class=\"path\">{}</div><ul>{findings}</ul></div>\n",
        escape(&image.subject),
        escape(&image.path.display().to_string())
    )
}

fn finding_line(f: &Finding) -> String {
    format!("<li><b>{}</b>: {}</li>", f.reason.code(), escape(&f.message))
}

/// A small JPEG of the photo with the chosen face's box, base64-encoded; `None` when unreadable.
fn thumbnail(report: &ImageReport, limits: &ImageLimits) -> Option<String> {
    let mut photo = image::load(&report.path, limits).ok()?;
    if let Some(face) = &report.face {
        let thickness = (photo.width().max(photo.height()) / THUMBNAIL).max(1) * 2;
        draw::rectangle(&mut photo, &face.bbox, thickness, ::image::Rgb([0, 220, 0]));
    }
    let scale = (THUMBNAIL as f32 / photo.width().max(photo.height()) as f32).min(1.0);
    let (w, h) = ((photo.width() as f32 * scale).round() as u32, (photo.height() as f32 * scale).round() as u32);
    let small = image::resize(&photo, w, h);
    jpeg_base64(&small)
}
