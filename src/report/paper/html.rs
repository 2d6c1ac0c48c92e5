//! `paper/index.html`: one self-contained page (inline CSS, no script, no network) with the
//! claims and their verdicts, the headline table, and every figure with its caption.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{write_atomic, Paper, PaperError, PaperFigure, Section};
use crate::report::claims::Verdict;
use crate::report::plot;
use crate::report::stats::MeanCi;
use crate::report::zoo;

/// Writes `dir/index.html` for `paper`; the figures are expected beside it.
pub fn write_index(dir: &Path, paper: &Paper) -> Result<PathBuf, PaperError> {
    let path = dir.join("index.html");
    write_atomic(&path, render_index(paper).as_bytes())?;
    Ok(path)
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ok{color:#0a6e31;font-weight:bold}.fail{color:#b00020;font-weight:bold}
figure{margin:1.5em 0;padding:.8em;border:1px solid #ddd;border-radius:4px}
figure img{width:100%;height:auto;display:block}
figcaption{font-size:.92em;margin-top:.6em}
.verdict{margin:.5em 0;padding:.4em .7em;border-left:4px solid}
.verdict.ok{border-color:#0a6e31;background:#eef8f1;font-weight:normal;color:#222}
.verdict.fail{border-color:#b00020;background:#fdeef0;font-weight:normal;color:#222}
.verdict ul{margin:.3em 0;padding-left:1.3em}.verdict li{margin:.15em 0}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}.grid figure{margin:0}
.about{color:#444}.meta{color:#666;font-size:.9em}code{background:#f3f3f3;padding:0 .2em}
.scroll{overflow-x:auto;max-width:100%}body{overflow-wrap:break-word}
nav.toc{background:#f7f7f7;border:1px solid #ddd;border-radius:4px;padding:.3em 1em;margin:1em 0}
nav.toc ol{margin:.3em 0;padding-left:1.4em}nav.toc li{margin:.1em 0}
";

/// The whole page.
pub fn render_index(paper: &Paper) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str(
        "<title>Early Quantization Shrinks Codebook: synthetic results reproduced</title>\n",
    );
    let _ = writeln!(h, "<style>{STYLE}</style>\n</head>\n<body>");
    h.push_str("<h1>Early Quantization Shrinks Codebook: synthetic results reproduced</h1>\n");
    let _ = writeln!(
        h,
        "<p class=\"meta\">Written by <code>vqsim paper</code> (vqsim {}). Every aggregate is a \
         mean with a 95% t-interval over seeds; &ldquo;CIs disjoint&rdquo; means the two \
         intervals do not overlap. Each verdict is computed from the data by the criterion \
         stated with its claim; a claim the data do not support is shown as not supported. \
         Click a figure for its SVG.</p>",
        esc(env!("CARGO_PKG_VERSION"))
    );
    contents(&mut h, paper);
    claims_table(&mut h, paper);
    headline_table(&mut h, paper);
    let mut number = 0;
    for s in &paper.sections {
        section(&mut h, s, &mut number);
    }
    h.push_str("</body>\n</html>\n");
    h
}

/// The table of contents: the claims, the headline, every section (and its remedies table).
fn contents(h: &mut String, paper: &Paper) {
    h.push_str(
        "<nav class=\"toc\"><b>Contents</b>\n<ol>\n<li><a href=\"#claims\">Claims</a></li>\n\
         <li><a href=\"#headline\">Headline: early vs deferred quantization</a></li>\n",
    );
    for s in &paper.sections {
        let _ = write!(
            h,
            "<li><a href=\"#{}\">{}</a>",
            anchor(&s.name),
            esc(&s.name)
        );
        if let Some(first) = s.about.first() {
            let _ = write!(h, ": {}", inline_markdown(gist(first)));
        }
        if !s.remedies.is_empty() {
            h.push_str(" (<a href=\"#remedies\">remedies table</a>)");
        }
        h.push_str("</li>\n");
    }
    h.push_str("</ol>\n</nav>\n");
}

/// What a scenario is about, for the contents: the first paragraph of its comment when short
/// (a title line), else that paragraph up to its first ": " or ". ".
fn gist(paragraph: &str) -> &str {
    const SHORT: usize = 100;
    if paragraph.len() <= SHORT {
        return paragraph;
    }
    let cut = [": ", ". "]
        .iter()
        .filter_map(|sep| paragraph.find(sep))
        .min()
        .unwrap_or(paragraph.len());
    &paragraph[..cut]
}

fn claims_table(h: &mut String, paper: &Paper) {
    h.push_str("<h2 id=\"claims\">Claims</h2>\n<div class=\"scroll\"><table>\n");
    h.push_str(
        "<tr><th>scenario</th><th>claim and criterion</th><th>runs</th><th>verdict</th></tr>\n",
    );
    for s in &paper.sections {
        if s.verdicts.is_empty() {
            let _ = writeln!(
                h,
                "<tr><td><a href=\"#{id}\">{name}</a></td><td>no claim applies to these runs</td>\
                 <td></td><td></td></tr>",
                id = anchor(&s.name),
                name = esc(&s.name)
            );
        }
        for v in &s.verdicts {
            let _ = writeln!(
                h,
                "<tr><td><a href=\"#{id}\">{name}</a></td><td>{claim}</td><td>{runs}</td>\
                 <td>{badge}</td></tr>",
                id = anchor(&s.name),
                name = esc(&s.name),
                claim = esc(&v.claim),
                runs = esc(&v.runs),
                badge = badge(v.supported)
            );
        }
    }
    h.push_str("</table></div>\n");
}

fn headline_table(h: &mut String, paper: &Paper) {
    h.push_str("<h2 id=\"headline\">Headline: early vs deferred quantization</h2>\n");
    let Some(head) = &paper.headline else {
        h.push_str(
            "<p>No early-vs-deferred comparison of the default configuration was run.</p>\n",
        );
        return;
    };
    let _ = writeln!(
        h,
        "<p>{}. Mean [95% CI] over seeds; two-sided p of the paired t-test on per-seed \
         differences (same seed = same data and initial weights) and of Welch&rsquo;s test. \
         Also in <a href=\"headline.csv\">headline.csv</a>.</p>",
        esc(&head.source)
    );
    h.push_str(
        "<div class=\"scroll\"><table>\n<tr><th>metric</th><th>early</th><th>deferred</th><th>paired p</th>\
         <th>Welch p</th><th>CIs disjoint</th></tr>\n",
    );
    for c in &head.rows {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&c.metric),
            esc(&ci(&c.baseline)),
            esc(&ci(&c.other)),
            esc(&pval(c.paired.p)),
            esc(&pval(c.welch.p)),
            if c.significant { "yes" } else { "no" }
        );
    }
    h.push_str("</table></div>\n");
}

fn section(h: &mut String, s: &Section, number: &mut usize) {
    let heading = if s.remedies.is_empty() {
        esc(&s.name)
    } else {
        format!("{}: remedies compared", esc(&s.name))
    };
    let _ = writeln!(h, "<h2 id=\"{}\">{heading}</h2>", anchor(&s.name));
    h.push_str("<div class=\"about\">\n");
    for p in &s.about {
        let _ = writeln!(h, "<p>{}</p>", inline_markdown(p));
    }
    h.push_str("</div>\n");
    // The results directory sits beside paper/ in OUT.
    let dir = format!("../{}/", esc(&s.name));
    let files: Vec<String> = s
        .files
        .iter()
        .map(|f| format!("<a href=\"{dir}{f}\">{f}</a>", f = esc(f)))
        .collect();
    h.push_str("<p class=\"meta\">");
    if let Some(r) = &s.runs {
        let _ = write!(
            h,
            "{} runs ({} diverged, excluded from every mean). ",
            r.total, r.diverged
        );
    }
    let _ = writeln!(
        h,
        "Results: <a href=\"{dir}\"><code>{}/</code></a> ({}).</p>",
        esc(&s.name),
        files.join(", ")
    );
    let (main, extra): (Vec<&PaperFigure>, Vec<&PaperFigure>) =
        s.figures.iter().partition(|f| f.main);
    if main.is_empty() {
        for v in &s.verdicts {
            verdict(h, v, None);
        }
    }
    for f in &main {
        *number += 1;
        figure(h, s, f, *number, true);
    }
    remedies(h, s);
    if !extra.is_empty() {
        let _ = writeln!(
            h,
            "<h3>Supplementary figures</h3>\n<p class=\"meta\">The same runs seen another way \
             (at most four per kind, spread over the sweep); not a test of the claims above.</p>\n\
             <div class=\"grid\">"
        );
        for f in &extra {
            *number += 1;
            figure(h, s, f, *number, false);
        }
        h.push_str("</div>\n");
    }
}

fn figure(h: &mut String, s: &Section, f: &PaperFigure, number: usize, main: bool) {
    let stem = esc(&f.stem);
    let _ = writeln!(
        h,
        "<figure id=\"fig-{stem}\">\n<a href=\"{stem}.svg\"><img src=\"{stem}.png\" \
         alt=\"{kind} figure of scenario {name}\" loading=\"lazy\"></a>\n<figcaption>\
         <b>Figure {number}.</b> {desc} Files: <a href=\"{stem}.png\">PNG</a> &middot; \
         <a href=\"{stem}.svg\">SVG</a>.",
        kind = esc(f.title),
        name = esc(&s.name),
        desc = f.caption,
    );
    if main {
        if s.verdicts.is_empty() {
            h.push_str("<br>No claim of the paper is checked on these runs.");
        }
        for v in &s.verdicts {
            verdict(h, v, Some(&f.stem));
        }
    }
    h.push_str("</figcaption>\n</figure>\n");
}

/// A verdict with its evidence; for a figure of one slice of the sweep (e.g. d = 8) only the
/// evidence of that slice, when the evidence is split by slice.
fn verdict(h: &mut String, v: &Verdict, stem: Option<&str>) {
    let class = if v.supported { "ok" } else { "fail" };
    let _ = write!(
        h,
        "<div class=\"verdict {class}\">Tests: {} &mdash; {}",
        esc(&v.claim),
        badge(v.supported)
    );
    let (what, items) = evidence_items(&v.evidence);
    let mine: Vec<&(Option<String>, String)> = items
        .iter()
        .filter(|(slug, _)| match (slug, stem) {
            (Some(slug), Some(stem)) => stem.ends_with(slug.as_str()),
            _ => true,
        })
        .collect();
    // A figure that matches no slice (e.g. drawn for other groups) still gets all evidence.
    let shown: Vec<&(Option<String>, String)> = if mine.is_empty() {
        items.iter().collect()
    } else {
        mine
    };
    let _ = write!(h, "<br>Runs: {}", esc(&v.runs));
    let _ = write!(h, "<br>Evidence ({}):<ul>", esc(&what));
    for (_, text) in shown {
        let _ = write!(h, "<li>{}</li>", esc(text));
    }
    h.push_str("</ul></div>\n");
}

/// Splits claims' evidence, "what: [k=v] item | [k=v] item", into its lead and items, each
/// with the figure-file suffix of its slice when it names one.
fn evidence_items(evidence: &str) -> (String, Vec<(Option<String>, String)>) {
    let (what, rest) = evidence.split_once(": ").unwrap_or(("numbers", evidence));
    let items = rest
        .split(" | ")
        .map(|item| {
            let slug = item
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .map(|(slice, _)| {
                    let pairs: Vec<(&str, &str)> = slice
                        .split(' ')
                        .filter_map(|kv| kv.split_once('='))
                        .collect();
                    plot::slug(&pairs)
                });
            (slug, item.to_string())
        })
        .collect();
    (what.to_string(), items)
}

/// The remedies tables with one sentence per method (the `REMEDIES` scenario only).
fn remedies(h: &mut String, s: &Section) {
    if s.remedies.is_empty() {
        return;
    }
    h.push_str(
        "<h3 id=\"remedies\">Remedies compared</h3>\n<p>Every method against the baseline in \
         each configuration: mean [95% CI] over seeds, sorted by perplexity per code; p of the \
         paired t-test on per-seed differences in perplexity (runs with one seed share data \
         and initial weights). Also in <a href=\"zoo.csv\">zoo.csv</a>. Only &ldquo;deferred \
         beats plain early&rdquo; was fixed as a claim in advance; the sentences state what \
         the data show for the rest.</p>\n",
    );
    for t in &s.remedies {
        let config: Vec<String> = t.config.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let _ = writeln!(
            h,
            "<h4>{}</h4>\n<p class=\"meta\">Baseline: {}.</p>\n<div class=\"scroll\"><table>\n<tr><th>#</th>\
             <th>method</th>",
            esc(&if config.is_empty() {
                "All runs".to_string()
            } else {
                config.join(", ")
            }),
            esc(&t.baseline)
        );
        for (_, name) in zoo::METRICS {
            let _ = write!(h, "<th>{}</th>", esc(name));
        }
        h.push_str("<th>paired p (perplexity)</th></tr>\n");
        for (rank, r) in t.rows.iter().enumerate() {
            let name = if r.baseline {
                format!("baseline ({})", t.baseline)
            } else {
                r.label.clone()
            };
            let _ = write!(
                h,
                "<tr><td class=\"num\">{}</td><td>{}</td>",
                rank + 1,
                esc(&name)
            );
            for c in &r.cells {
                let _ = write!(h, "<td class=\"num\">{}</td>", esc(&ci(&c.ci)));
            }
            let _ = writeln!(
                h,
                "<td class=\"num\">{}</td></tr>",
                esc(&zoo::p_text(r.cells[0].paired_p))
            );
        }
        h.push_str("</table></div>\n<ul>\n");
        for line in zoo::sentences(t) {
            let _ = writeln!(h, "<li>{}</li>", esc(&line));
        }
        h.push_str("</ul>\n");
    }
}

/// Scenario comments as HTML: text escaped, `code` spans, *emphasis* and **strong** marked up,
/// any other `*` or backtick kept as written.
fn inline_markdown(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(['`', '*']) {
        out.push_str(&esc(&rest[..i]));
        let after = &rest[i..];
        let (marker, tag) = if after.starts_with('`') {
            ("`", "code")
        } else if after.starts_with("**") {
            ("**", "strong")
        } else {
            ("*", "em")
        };
        let body = &after[marker.len()..];
        // Emphasis hugs its text (`a * b * c` is arithmetic); code may hold anything.
        let close = body.find(marker).filter(|&j| {
            j > 0 && (tag == "code" || (!body.starts_with(' ') && !body[..j].ends_with(' ')))
        });
        match close {
            Some(j) => {
                let inner = &body[..j];
                let inner = if tag == "code" {
                    esc(inner)
                } else {
                    inline_markdown(inner)
                };
                let _ = write!(out, "<{tag}>{inner}</{tag}>");
                rest = &body[j + marker.len()..];
            }
            None => {
                out.push_str(marker);
                rest = body;
            }
        }
    }
    out.push_str(&esc(rest));
    out
}

fn badge(supported: bool) -> &'static str {
    if supported {
        "<span class=\"ok\">&#10004; supported</span>"
    } else {
        "<span class=\"fail\">&#10008; not supported</span>"
    }
}

/// An id usable in `href="#…"`: letters, digits, '-' and '_' only.
fn anchor(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("s-{s}")
}

/// Text made safe for HTML content and attribute values. Descriptions above are trusted
/// markup (entities) and do not pass through here.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn ci(c: &MeanCi) -> String {
    if c.n == 0 {
        return "no runs".into();
    }
    format!("{} [{}, {}] (n={})", sig(c.mean), sig(c.lo), sig(c.hi), c.n)
}

fn pval(p: f64) -> String {
    if p.is_finite() && p < 1e-4 {
        format!("{p:.1e}")
    } else {
        sig(p)
    }
}

/// Three significant digits, fewer decimals for large numbers.
fn sig(x: f64) -> String {
    if !x.is_finite() || x == 0.0 {
        return format!("{x}");
    }
    let decimals = (2 - x.abs().log10().floor() as i64).clamp(0, 12) as usize;
    format!("{x:.decimals$}")
}
