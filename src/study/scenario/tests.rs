use super::*;
use crate::sim::config::{Init, ScheduleKind};

fn parse(text: &str) -> Scenario {
    Scenario::from_str(text, None, "t").unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> String {
    Scenario::from_str(text, Some(Path::new("x.toml")), "x")
        .expect_err("should be rejected")
        .to_string()
}

#[test]
fn empty_file_is_one_default_run() {
    let s = parse("");
    assert_eq!(s.name, "t");
    assert_eq!(s.seeds, [0]);
    assert_eq!(s.base, RunConfig::default());
    assert!(s.axes.is_empty());
    assert_eq!(s.runs.len(), 1);
    assert_eq!(*s.runs[0].config, RunConfig::default());
}

#[test]
fn sections_override_defaults() {
    let s = parse("[model]\nwidth = 8\n[train]\nlr = 1\n");
    assert_eq!(s.base.model.width, 8);
    assert_eq!(s.base.train.lr, 1.0);
    assert_eq!(s.base.model.depth, RunConfig::default().model.depth);
}

#[test]
fn replicates_mean_seeds_0_to_n() {
    assert_eq!(parse("replicates = 4").seeds, [0, 1, 2, 3]);
    assert_eq!(parse("seeds = [7, 3]").seeds, [7, 3]);
}

#[test]
fn axes_keep_file_order_not_alphabetical() {
    let s = parse(
        "[sweep]\n\"schedule.kind\" = [\"early\", \"deferred\"]\n\"data.dim\" = [2, 8]\n\"model.width\" = [16, 32, 64]\n",
    );
    let keys: Vec<&str> = s.axes.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys, ["schedule.kind", "data.dim", "model.width"]);
}

#[test]
fn nested_and_quoted_axes_are_the_same_thing() {
    let s = parse(
        "[sweep]\nmodel.width = [16, 32]\n\"data.dim\" = [2, 8]\n[sweep.train]\nepochs = [1, 2]\n",
    );
    let keys: Vec<&str> = s.axes.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys, ["model.width", "data.dim", "train.epochs"]);
}

#[test]
fn expansion_is_last_axis_fastest_seeds_innermost() {
    let s = parse(
        "seeds = [5, 6]\n[sweep]\n\"schedule.kind\" = [\"early\", \"deferred\"]\n\"quantizer.codebook_size\" = [16, 64, 256]\n",
    );
    assert_eq!(s.combinations(), 6);
    assert_eq!(s.runs.len(), 12);
    let got: Vec<(ScheduleKind, usize, u64)> = s
        .runs
        .iter()
        .map(|r| {
            (
                r.config.schedule.kind,
                r.config.quantizer.codebook_size,
                r.seed,
            )
        })
        .collect();
    use ScheduleKind::{Deferred as D, Early as E};
    let want = vec![
        (E, 16, 5),
        (E, 16, 6),
        (E, 64, 5),
        (E, 64, 6),
        (E, 256, 5),
        (E, 256, 6),
        (D, 16, 5),
        (D, 16, 6),
        (D, 64, 5),
        (D, 64, 6),
        (D, 256, 5),
        (D, 256, 6),
    ];
    assert_eq!(got, want);
    for (i, r) in s.runs.iter().enumerate() {
        assert_eq!(r.index, i);
    }
}

#[test]
fn run_count_is_product_of_axes_times_seeds() {
    let s = parse(
        "replicates = 3\n[sweep]\n\"model.depth\" = [0, 1, 2, 3]\n\"model.activation\" = [\"relu\", \"tanh\"]\n\"quantizer.init\" = [\"uniform\", \"normal\", \"kmeans\"]\n",
    );
    assert_eq!(s.runs.len(), 4 * 2 * 3 * 3);
    let mut ids: Vec<&str> = s.runs.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        s.runs.len(),
        "run ids must be unique within a scenario"
    );
}

#[test]
fn sweep_values_override_the_base() {
    let s = parse("[quantizer]\ninit = \"uniform\"\n[sweep]\n\"quantizer.init\" = [\"normal\"]\n");
    assert_eq!(s.base.quantizer.init, Init::Uniform);
    assert_eq!(s.runs[0].config.quantizer.init, Init::Normal);
}

#[test]
fn ids_ignore_name_layout_and_position() {
    let a = parse("name = \"a\"\nseeds = [0, 1]\n[sweep]\n\"model.width\" = [16, 32]\n\"schedule.kind\" = [\"early\", \"deferred\"]\n");
    // Same runs through another layout: axes swapped, one value fixed in its section instead.
    let b = parse("name = \"b\"\nseeds = [1]\n[schedule]\nkind = \"deferred\"\n[sweep]\n\"model.width\" = [32, 16]\n");
    for rb in &b.runs {
        let ra = a
            .runs
            .iter()
            .find(|r| r.config == rb.config && r.seed == rb.seed)
            .expect("same run in both");
        assert_eq!(ra.id, rb.id);
        assert_eq!(ra.id, run_id(&rb.config, rb.seed));
    }
    assert_ne!(a.runs[0].id, a.runs[1].id, "seed changes the id");
}

#[test]
fn ids_are_stable_across_loads() {
    let text = "[sweep]\n\"train.lr\" = [0.001, 0.01]\n";
    let first: Vec<String> = parse(text).runs.into_iter().map(|r| r.id).collect();
    let second: Vec<String> = parse(text).runs.into_iter().map(|r| r.id).collect();
    assert_eq!(first, second);
}

#[test]
fn resolved_toml_round_trips() {
    let texts = [
        "",
        "name = \"x\"\nreplicates = 2\n[data]\nstd = 0\n[train]\nlr = 1\n[sweep]\n\"train.lr\" = [1, 0.5, 1e-4]\n\"model.activation\" = [\"gelu\", \"relu\"]\n",
        BUILTIN,
    ];
    for text in texts {
        let s = parse(text);
        let again = Scenario::from_str(&s.resolved_toml(), None, "t")
            .unwrap_or_else(|e| panic!("{e}\n{}", s.resolved_toml()));
        assert_eq!(again, s, "{}", s.resolved_toml());
        // Every key is explicit.
        for (key, _) in flatten(&RunConfig::default()) {
            let (_, name) = key.split_once('.').unwrap();
            assert!(
                s.resolved_toml().contains(&format!("\n{name} = ")),
                "{key} missing"
            );
        }
    }
}

#[test]
fn builtin_default_is_early_vs_deferred_over_three_seeds() {
    let s = Scenario::builtin_default();
    assert_eq!(s.name, "default");
    assert_eq!(s.seeds, [0, 1, 2]);
    assert_eq!(s.base, RunConfig::default());
    assert_eq!(s.axes.len(), 1);
    assert_eq!(s.axes[0].key, "schedule.kind");
    assert_eq!(s.runs.len(), 6);
}

#[test]
fn flatten_lists_every_key_in_section_order() {
    let flat = flatten(&RunConfig::default());
    assert_eq!(flat.len(), 55);
    assert_eq!(flat[0], ("data.modes".to_string(), "10".to_string()));
    assert_eq!(flat[5], ("data.weight_ratio".to_string(), "1".to_string()));
    assert_eq!(
        flat[15],
        ("model.activation".to_string(), "relu".to_string())
    );
    // Train's four keys and schedule's two come last, after every quantizer key.
    let lr = &flat[flat.len() - 6];
    assert_eq!(lr, &("train.lr".to_string(), "0.001".to_string()));
    assert_eq!(flat.last().unwrap().0, "schedule.continuous_epochs");
}

#[test]
fn codebook_cap_names_the_sweep_run() {
    let err = parse_err("[data]\nmodes = 2\npoints_per_mode = 10\n[sweep]\n\"data.points_per_mode\" = [100, 10]\n\"quantizer.codebook_size\" = [32]\n");
    assert!(err.contains("`quantizer.codebook_size` = 32"), "{err}");
    assert!(
        err.contains("sweep.\"quantizer.codebook_size\"`[0]"),
        "{err}"
    );
    assert!(err.contains("(20,"), "{err}");
}

#[test]
fn base_error_has_no_sweep_context() {
    let err = parse_err("[model]\nwidth = 0\n[sweep]\n\"schedule.kind\" = [\"early\"]\n");
    assert!(!err.contains("sweep"), "{err}");
}

#[test]
fn syntax_error_has_line_and_column() {
    let err = parse_err("[data]\nmodes = 3\ndim = = 2\n");
    assert!(err.starts_with("x.toml:3:"), "{err}");
}

#[test]
fn messages_follow_the_documented_shape() {
    assert_eq!(
        parse_err("[model]\nwidht = 3\n"),
        "x.toml: unknown key `model.widht`; [model] accepts latent_dim, width, depth, activation, kind (did you mean `width`?)"
    );
    assert_eq!(
        parse_err("[train]\nlr = \"fast\"\n"),
        "x.toml: `train.lr` must be a float, found string \"fast\""
    );
    assert_eq!(
        parse_err("[sweep]\n\"model.depth\" = []\n"),
        "x.toml: `sweep.\"model.depth\"` must be a non-empty array of values, found an empty array"
    );
    assert_eq!(
        parse_err("[quantizer]\ncodebook_size = 100000\n[data]\nmodes = 100\npoints_per_mode = 1000\n"),
        "x.toml: `quantizer.codebook_size` = 100000 is out of range; allowed: an integer ≥ 2 and ≤ 65536"
    );
    assert_eq!(
        parse_err("[quantizer]\ncodebook_size = 20000\n"),
        "x.toml: `quantizer.codebook_size` = 20000 is out of range; allowed: an integer ≥ 2 and ≤ the number of data points (10000, data.modes × data.points_per_mode)"
    );
}

#[test]
fn no_input_panics() {
    // Every prefix of a scenario touching each feature, and each with a byte swapped for a
    // character that breaks values, must give Ok or Err — never a panic.
    let text = "name = \"é-run\"\nseeds = [0, 1]\n[data]\nmodes = 3\nstd = 0.5\n[model]\nactivation = \"tanh\"\n\
                [sweep]\n\"model.width\" = [8, 16]\nquantizer.init = [\"normal\", \"uniform\"]\n";
    let cuts = (0..=text.len()).filter(|&i| text.is_char_boundary(i));
    for i in cuts {
        let _ = Scenario::from_str(&text[..i], None, "t");
        for junk in ["-", "[", "\"", "0", "=", ".", "\n"] {
            let mut mutated = text[..i].to_string();
            mutated.push_str(junk);
            mutated.push_str(&text[i..]);
            let _ = Scenario::from_str(&mutated, None, "t");
        }
    }
}

#[test]
fn long_lists_stay_fast() {
    let seeds: Vec<String> = (0..50_000).map(|s| s.to_string()).collect();
    let s = parse(&format!("seeds = [{}]\n", seeds.join(", ")));
    assert_eq!(s.runs.len(), 50_000);
    let widths: Vec<String> = (1..=4096).map(|w| w.to_string()).collect();
    let s = parse(&format!(
        "[sweep]\n\"model.width\" = [{}]\n",
        widths.join(", ")
    ));
    assert_eq!(s.runs.len(), 4096);
}

#[test]
fn baseline_keys_follow_the_axes_and_values_read_as_in_runs_csv() {
    let s = parse(
        "[sweep]\n\"quantizer.init\" = [\"uniform\", \"kmeans\"]\n\"train.lr\" = [1, 0.5]\n\
         \"schedule.kind\" = [\"early\", \"deferred\"]\n\
         [compare]\nbaseline = { \"schedule.kind\" = \"early\", train.lr = 1 }\n",
    );
    let b = s.baseline.expect("declared");
    assert_eq!(
        b.texts(),
        [
            ("train.lr".to_string(), "1".to_string()),
            ("schedule.kind".to_string(), "early".to_string())
        ]
    );
    // The value text is the one runs.csv writes for that run's parameter.
    let lr = flatten(&s.runs[0].config)
        .into_iter()
        .find(|(k, _)| k == "train.lr")
        .unwrap();
    assert_eq!(lr.1, "1");
}

#[test]
fn no_compare_section_means_no_declared_baseline() {
    assert_eq!(parse(BUILTIN).baseline, None);
}

#[test]
fn resolved_toml_keeps_the_baseline() {
    let s = parse(
        "[sweep]\n\"train.lr\" = [0.5, 1e-4]\n\"schedule.kind\" = [\"early\", \"deferred\"]\n\
         [compare]\nbaseline = { \"train.lr\" = 1e-4, \"schedule.kind\" = \"deferred\" }\n",
    );
    let again = parse(&s.resolved_toml());
    assert_eq!(again, s, "{}", s.resolved_toml());
    assert!(s.resolved_toml().contains("\n[compare]\nbaseline = {"));
}

#[test]
fn baseline_needs_a_swept_key_and_one_of_its_values() {
    let e = parse_err("[compare]\nbaseline = { \"schedule.kind\" = \"early\" }\n");
    assert!(
        e.contains("is not a sweep axis") && e.contains("no [sweep]"),
        "{e}"
    );
    let e = parse_err(
        "[sweep]\n\"schedule.kind\" = [\"deferred\"]\n[compare]\nbaseline = { \"schedule.kind\" = \"early\" }\n",
    );
    assert!(
        e.contains("= \"early\" is not a value of that sweep axis"),
        "{e}"
    );
    let e = parse_err("[sweep]\n\"schedule.kind\" = [\"early\"]\n[compare]\nbaseline = {}\n");
    assert!(
        e.contains("`compare.baseline` must be") && e.contains("empty table"),
        "{e}"
    );
    let e = parse_err("[sweep]\n\"schedule.kind\" = [\"early\"]\n[compare]\n");
    assert!(
        e.contains("`compare.baseline` must be") && e.contains("nothing"),
        "{e}"
    );
    let e = parse_err("compare = 3\n[sweep]\n\"model.width\" = [8]\n");
    assert!(e.contains("`compare` must be a table"), "{e}");
}

const ARMS_SCENARIO: &str = r#"
seeds = [0, 1]
[sweep]
"quantizer.codebook_size" = [16, 32]
arms = [{}, { "quantizer.init" = "uniform" }, { "schedule.kind" = "deferred", "quantizer.update" = "ema" }]
"#;

#[test]
fn arms_are_one_axis_of_whole_settings() {
    let s = parse(ARMS_SCENARIO);
    assert_eq!(s.runs.len(), 2 * 3 * 2);
    let arm = |i: usize| &s.runs[i * 2].config;
    // Last axis fastest: the three arms at S = 16, then at S = 32.
    assert_eq!(arm(0).quantizer.init, Init::Kmeans);
    assert_eq!(arm(0).schedule.kind, ScheduleKind::Early);
    assert_eq!(arm(1).quantizer.init, Init::Uniform);
    assert_eq!(arm(1).schedule.kind, ScheduleKind::Early);
    assert_eq!(arm(2).schedule.kind, ScheduleKind::Deferred);
    assert_eq!(arm(2).quantizer.update, crate::sim::config::Update::Ema);
    assert_eq!(arm(2).quantizer.init, Init::Kmeans);
    assert_eq!(arm(3).quantizer.codebook_size, 32);
    // An empty arm is the base configuration: same id as the run without arms.
    let plain = parse("seeds = [0, 1]\n[quantizer]\ncodebook_size = 16\n");
    assert_eq!(s.runs[0].id, plain.runs[0].id);
}

#[test]
fn arms_default_to_the_first_arm_as_baseline() {
    let s = parse(ARMS_SCENARIO);
    let b = s.baseline.clone().expect("arms give a baseline");
    assert_eq!(
        b.texts(),
        [
            ("quantizer.init".to_string(), "kmeans".to_string()),
            ("quantizer.update".to_string(), "loss".to_string()),
            ("schedule.kind".to_string(), "early".to_string()),
        ]
    );
    // The resolved text keeps arms and baseline and loads to the same scenario.
    let again = parse(&s.resolved_toml());
    assert_eq!(again.runs, parse(ARMS_SCENARIO).runs);
}

#[test]
fn a_declared_baseline_may_name_an_arm_key() {
    let text =
        format!("{ARMS_SCENARIO}[compare]\nbaseline = {{ \"quantizer.init\" = \"uniform\" }}\n");
    let b = parse(&text).baseline.unwrap();
    assert_eq!(b.texts(), [("quantizer.init".into(), "uniform".into())]);
    let text =
        format!("{ARMS_SCENARIO}[compare]\nbaseline = {{ \"quantizer.init\" = \"normal\" }}\n");
    let err = parse_err(&text);
    assert!(err.contains("compare.baseline.\"quantizer.init\""), "{err}");
}

#[test]
fn arms_are_checked_like_axes() {
    let err = parse_err("[sweep]\narms = [{ \"quantizer.restrat\" = \"lru\" }]\n");
    assert!(err.contains("sweep.arms[0].\"quantizer.restrat\""), "{err}");
    let err = parse_err("[sweep]\narms = [{ \"model.width\" = -3 }]\n");
    assert!(err.contains("sweep.arms[0].\"model.width\""), "{err}");
    let err = parse_err("[sweep]\narms = [{}, {}]\n");
    assert!(err.contains("twice"), "{err}");
    let err = parse_err("[sweep]\narms = [1, 2]\n");
    assert!(err.contains("sweep.arms[0]"), "{err}");
    let err =
        parse_err("[sweep]\n\"model.width\" = [8, 16]\narms = [{}, { \"model.width\" = 4 }]\n");
    assert!(
        err.contains("both a sweep axis and set by `sweep.arms`"),
        "{err}"
    );
}
