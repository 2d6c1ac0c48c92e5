//! `vqsim paper`'s output: the index on a hand-made fixture (valid HTML, every figure linked,
//! text escaped, failing claims shown as failing), and the whole pipeline on tiny scenarios.

use std::fs;
use std::path::Path;

use vqsim::report::claims::Verdict;
use vqsim::report::paper::{self, Headline, Paper, PaperFigure, PaperScenario, RunTally, Section};
use vqsim::report::stats::{MeanCi, Paired, Welch};
use vqsim::report::summary::Comparison;
use vqsim::report::table::Table;
use vqsim::study::sweep::{ProgressMode, SweepOptions};

/// Elements without a closing tag.
const VOID: [&str; 4] = ["meta", "img", "br", "link"];

/// Checks that tags nest and close properly, that the page has no script and loads nothing
/// from the network, and that every `<` in text starts a tag (i.e. text was escaped).
fn assert_valid_html(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"), "no doctype");
    let lower = html.to_lowercase();
    for banned in ["<script", "http://", "https://", "@import", "url("] {
        assert!(!lower.contains(banned), "page contains {banned}");
    }
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('!') {
            rest = &r[r.find('>').expect("unclosed <!") + 1..];
            continue;
        }
        let end = rest.find('>').expect("unclosed tag");
        let tag = &rest[..end];
        assert!(!tag.contains('<'), "`<` inside a tag: {tag}");
        let (closing, body) = match tag.strip_prefix('/') {
            Some(b) => (true, b),
            None => (false, tag),
        };
        let name: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_lowercase();
        assert!(!name.is_empty(), "unescaped `<` in text before: {tag}");
        // Attribute values are quoted and contain no stray quotes.
        assert_eq!(
            body.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        if closing {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.as_str()),
                "</{name}> closes nothing"
            );
        } else if !VOID.contains(&name.as_str()) {
            stack.push(name);
        }
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
}

/// Every `href` and `src` of the page in `dir` resolves: a relative path to a file or directory
/// that exists, an in-page `#anchor` to an element with that id.
fn assert_links_resolve(dir: &Path, html: &str) {
    let mut checked = 0;
    for attr in ["href=\"", "src=\""] {
        for (i, _) in html.match_indices(attr) {
            let rest = &html[i + attr.len()..];
            let target = &rest[..rest.find('"').unwrap()];
            match target.strip_prefix('#') {
                Some(id) => assert!(html.contains(&format!("id=\"{id}\"")), "no #{id}"),
                None => {
                    let path = target.split('#').next().unwrap();
                    assert!(
                        dir.join(path).exists(),
                        "{target} does not exist in {dir:?}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no links at all");
}

fn ci(mean: f64, half: f64) -> MeanCi {
    MeanCi {
        n: 5,
        mean,
        lo: mean - half,
        hi: mean + half,
    }
}

fn fixture() -> Paper {
    let files = || {
        ["summary.csv", "comparisons.csv", "runs.csv"]
            .map(String::from)
            .to_vec()
    };
    let fig = |stem: &str, title, main| PaperFigure {
        stem: stem.into(),
        title,
        caption: format!("A {title} figure."),
        main,
    };
    Paper {
        sections: vec![
            Section {
                name: "shrinkage".into(),
                about: vec!["Claim: codes <die> & the codebook \"shrinks\".".into()],
                runs: Some(RunTally {
                    total: 12,
                    diverged: 1,
                }),
                files: files(),
                verdicts: vec![Verdict {
                    claim: "early shrink_ratio < 0.5 × deferred's & CIs disjoint".into(),
                    supported: true,
                    evidence: "mean [95% CI]: [data.dim=2] early 0.05 vs 0.99 | \
                               [data.dim=8] early 0.12 vs 1.0 <b>"
                        .into(),
                    runs: "n = 5 per arm (4 arms), none diverged, failed or missing".into(),
                }],
                figures: vec![
                    fig("shrinkage-shrinkage_d2", "shrinkage", true),
                    fig("shrinkage-shrinkage_d8", "shrinkage", true),
                    fig("shrinkage-dynamics_d2", "dynamics", false),
                ],
                remedies: vec![],
            },
            Section {
                name: "capacity".into(),
                about: vec!["With *untrained* encoders, `claims::capacity` says 2 * 3 *x".into()],
                runs: Some(RunTally {
                    total: 4,
                    diverged: 0,
                }),
                files: files(),
                verdicts: vec![Verdict {
                    claim: "Embeddings collapse at the smallest capacity".into(),
                    supported: false,
                    evidence: "smallest vs largest: embed_rank 1.9 vs 1.8 (overlap)".into(),
                    runs: "incomplete: n = 2–3 of 3 per arm (2 arms; 1 runs diverged, 0 failed, \
                           0 missing): [model.width=2] 2 ok of 3 (1 diverged, 0 failed, 0 missing)"
                        .into(),
                }],
                figures: vec![
                    fig("capacity-capacity_d2", "capacity", true),
                    fig("capacity-dynamics_d2", "dynamics", false),
                ],
                remedies: vec![],
            },
        ],
        headline: Some(Headline {
            source: "scenario dynamics: K=10, d=2".into(),
            rows: vec![Comparison {
                params: vec![],
                arm: vec!["deferred".into()],
                label: "schedule.kind=deferred".into(),
                metric: "perplexity".into(),
                baseline: ci(6.4, 2.5),
                other: ci(59.0, 2.1),
                paired: Paired {
                    diff: ci(52.6, 3.0),
                    t: 36.6,
                    df: 4.0,
                    p: 3.3e-6,
                },
                welch: Welch {
                    t: -40.0,
                    df: 7.9,
                    p: 1.4e-10,
                },
                significant: true,
            }],
        }),
    }
}

#[test]
fn index_is_valid_html_linking_every_figure_with_text_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let paper = fixture();
    let path = paper::write_index(dir.path(), &paper).unwrap();
    assert_eq!(path, dir.path().join("index.html"));
    let html = fs::read_to_string(&path).unwrap();
    assert_valid_html(&html);
    for s in &paper.sections {
        for f in &s.figures {
            assert!(
                html.contains(&format!("src=\"{}.png\"", f.stem)),
                "{}",
                f.stem
            );
            assert!(
                html.contains(&format!("href=\"{}.svg\"", f.stem)),
                "{}",
                f.stem
            );
        }
    }
    assert!(html.contains("codes &lt;die&gt; &amp; the codebook &quot;shrinks&quot;"));
    assert!(html.contains("shrink_ratio &lt; 0.5"));
    assert!(!html.contains("<b>\""), "evidence markup must be escaped");
    assert!(html.contains("1.0 &lt;b&gt;"));
    // The failing claim is shown as failing, the holding one as holding.
    assert_eq!(html.matches("&#10008; not supported").count(), 2); // table + caption
    assert!(html.contains("&#10004; supported"));
    // The headline row, with its interval.
    assert!(html.contains("6.40 [3.90, 8.90] (n=5)") && html.contains("1.4e-10"));
    assert!(html.contains("3.3e-6"), "paired p");
}

#[test]
fn scenario_text_markdown_is_rendered_and_results_are_links() {
    let html = paper::render_index(&fixture());
    assert!(
        html.contains(
            "With <em>untrained</em> encoders, <code>claims::capacity</code> says 2 * 3 *x"
        ),
        "markdown"
    );
    for f in ["summary.csv", "comparisons.csv", "runs.csv"] {
        assert!(
            html.contains(&format!("<a href=\"../capacity/{f}\">{f}</a>")),
            "{f}"
        );
    }
    assert!(html.contains("<a href=\"../shrinkage/\"><code>shrinkage/</code></a>"));
}

#[test]
fn each_figure_caption_shows_only_its_own_slice_of_the_evidence() {
    let html = paper::render_index(&fixture());
    let d8 = html.find("id=\"fig-shrinkage-shrinkage_d8\"").unwrap();
    let d2 = html.find("id=\"fig-shrinkage-shrinkage_d2\"").unwrap();
    let caption_d2 = &html[d2..d8];
    assert!(caption_d2.contains("[data.dim=2] early 0.05"));
    assert!(!caption_d2.contains("[data.dim=8]"));
}

/// A tiny configuration: runs take milliseconds.
const TINY: &str = r#"
seeds = [0, 1, 2]

[data]
modes = 4
points_per_mode = 60

[model]
width = 8

[quantizer]
codebook_size = 4

[train]
epochs = 2
batch_size = 64

[schedule]
continuous_epochs = 2
"#;

fn tiny(name: &str, sweep: &str) -> PaperScenario {
    PaperScenario {
        name: name.into(),
        text: format!("# Tests {name}.\n#\n# Second paragraph.\n{TINY}\n[sweep]\n{sweep}\n"),
        path: None,
    }
}

fn listed(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn paper_runs_the_scenarios_and_links_every_figure_it_copied() {
    let out = tempfile::tempdir().unwrap();
    let scenarios = [
        tiny("tokens", "\"quantizer.codebook_size\" = [4, 16, 64]\n\"schedule.kind\" = [\"early\", \"deferred\"]"),
        tiny("dynamics", "\"schedule.kind\" = [\"early\", \"deferred\"]"),
    ];
    let mut opts = SweepOptions::new(out.path());
    opts.threads = Some(1);
    opts.progress = ProgressMode::Quiet;
    let paper = paper::run(&scenarios, &opts).unwrap();

    let names: Vec<&str> = paper.sections.iter().map(|s| s.name.as_str()).collect();
    // The §4.2 check (`vqsim theory`) closes every paper, with its figure and verdict.
    assert_eq!(names, ["tokens", "dynamics", "theory"]);
    let theory = &paper.sections[2];
    assert!(
        theory.verdicts[0].supported,
        "{}",
        theory.verdicts[0].evidence
    );
    assert_eq!(theory.figures[0].stem, "theory-theory");
    assert!(out.path().join("theory").join("theory.csv").is_file());
    assert_eq!(
        paper.sections[0].about,
        ["Tests tokens.", "Second paragraph."]
    );
    assert_eq!(paper.sections[0].runs.map(|r| r.total), Some(18));
    // The theory section is computed: no runs, and it links only the file it wrote.
    assert_eq!(theory.runs, None);
    assert_eq!(theory.files, ["theory.csv"]);
    // tokens: the gap and the scaling claim; dynamics: the codebook-distance claim.
    assert_eq!(paper.sections[0].verdicts.len(), 2);
    assert_eq!(paper.sections[1].verdicts.len(), 1);
    assert!(paper.sections[0]
        .figures
        .iter()
        .any(|f| f.main && f.title == "token scaling"));

    let dir = out.path().join("paper");
    let html = fs::read_to_string(dir.join("index.html")).unwrap();
    assert_valid_html(&html);
    assert_links_resolve(&dir, &html);
    let figures: Vec<String> = listed(&dir)
        .into_iter()
        .filter(|f| f.ends_with(".png") || f.ends_with(".svg"))
        .collect();
    let in_sections: usize = paper.sections.iter().map(|s| 2 * s.figures.len()).sum();
    assert_eq!(figures.len(), in_sections);
    for f in &figures {
        assert!(html.contains(&format!("\"{f}\"")), "{f} not linked");
        assert!(fs::metadata(dir.join(f)).unwrap().len() > 0);
    }

    let claims = Table::read(&dir.join("claims.csv")).unwrap();
    // theory: the constructed check and the trained one.
    assert_eq!(theory.verdicts.len(), 2);
    assert_eq!(claims.rows.len(), 5);
    for (i, s) in ["tokens", "tokens", "dynamics", "theory", "theory"]
        .iter()
        .enumerate()
    {
        assert_eq!(claims.get(i, "scenario").unwrap(), *s);
        let v = claims.get(i, "supported").unwrap();
        assert!(v == "true" || v == "false");
    }
    let headline = Table::read(&dir.join("headline.csv")).unwrap();
    let metrics: Vec<&str> = (0..headline.rows.len())
        .map(|i| headline.get(i, "metric").unwrap())
        .collect();
    assert_eq!(metrics, paper::HEADLINE_METRICS);
    assert!(headline
        .get(0, "source")
        .unwrap()
        .starts_with("scenario dynamics"));

    // A second call resumes: nothing reruns (the per-run timings would change) and the same
    // verdicts come out.
    let runs_before = fs::read_to_string(out.path().join("tokens/runs.csv")).unwrap();
    let claims_before = fs::read_to_string(dir.join("claims.csv")).unwrap();
    let again = paper::run(&scenarios, &opts).unwrap();
    assert_eq!(again.sections.len(), 3);
    assert_eq!(
        fs::read_to_string(out.path().join("tokens/runs.csv")).unwrap(),
        runs_before
    );
    assert_eq!(
        fs::read_to_string(dir.join("claims.csv")).unwrap(),
        claims_before
    );
}

#[test]
fn the_remedies_section_appears_with_the_zoo_scenario() {
    let out = tempfile::tempdir().unwrap();
    let zoo = tiny(
        "zoo",
        "\"quantizer.init\" = [\"kmeans\", \"uniform\"]\n\"schedule.kind\" = [\"early\", \"deferred\"]\n\
         [compare]\nbaseline = { \"schedule.kind\" = \"early\", \"quantizer.init\" = \"kmeans\" }",
    );
    let mut opts = SweepOptions::new(out.path());
    opts.threads = Some(1);
    opts.progress = ProgressMode::Quiet;
    let paper = paper::run(&[zoo], &opts).unwrap();
    let s = &paper.sections[0];
    assert_eq!(s.remedies.len(), 1);
    assert_eq!(s.remedies[0].rows.len(), 4);
    // The one pre-registered claim.
    assert_eq!(s.verdicts.len(), 1);
    assert!(s.verdicts[0]
        .claim
        .starts_with("Deferred quantization beats plain early"));
    assert!(s.figures.iter().any(|f| f.main && f.title == "remedies"));

    let dir = out.path().join("paper");
    let html = fs::read_to_string(dir.join("index.html")).unwrap();
    assert_valid_html(&html);
    assert_links_resolve(&dir, &html);
    assert!(html.contains("<h2 id=\"s-zoo\">zoo: remedies compared</h2>"));
    assert!(html.contains("<h3 id=\"remedies\">Remedies compared</h3>"));
    assert!(
        html.contains("<li>init=uniform: perplexity/S "),
        "one sentence per method"
    );
    assert_eq!(html.matches("for the baseline (paired p = ").count(), 3);
    let table = Table::read(&dir.join("zoo.csv")).unwrap();
    assert_eq!(table.rows.len(), 4);

    // Without the zoo scenario: no remedies section, and its table is gone from paper/.
    let other = tiny("dynamics", "\"schedule.kind\" = [\"early\", \"deferred\"]");
    let paper = paper::run(&[other], &opts).unwrap();
    assert!(paper.sections[0].remedies.is_empty());
    let html = fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(!html.contains("Remedies compared"));
    assert!(!dir.join("zoo.csv").exists());
}
