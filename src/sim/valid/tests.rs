//! One test per rule, named after it.

use super::table::{fields, rule_of, section_keys};
use super::validate;
use crate::sim::config::RangeError;

/// Validation without a data file, its result reduced to pass or the broken rule.
fn check(cfg: &RunConfig) -> Result<(), RangeError> {
    validate(cfg, None).map(drop)
}
use crate::sim::config::key::{check_value, ValueError};
use crate::sim::config::{ModelKind, Rule, RunConfig, Update};
use crate::sim::vq;

fn with(key: &str, value: toml::Value) -> RunConfig {
    let (section, name) = key.split_once('.').unwrap();
    let mut table = toml::Value::try_from(RunConfig::default()).unwrap();
    table[section]
        .as_table_mut()
        .unwrap()
        .insert(name.into(), value);
    table.try_into().unwrap()
}

/// Asserts `key = value` breaks a rule of `key` (and only one of that key).
fn rejects(key: &str, value: toml::Value) {
    let cfg = with(key, value.clone());
    let err = check(&cfg).expect_err(&format!("{key} = {value} should be rejected"));
    assert_eq!(err.key, key);
}

fn accepts(key: &str, value: toml::Value) {
    let cfg = with(key, value.clone());
    assert_eq!(check(&cfg), Ok(()), "{key} = {value} should be accepted");
}

use toml::Value::{Float as F, Integer as I};

#[test]
fn defaults_are_valid() {
    assert_eq!(check(&RunConfig::default()), Ok(()));
}

#[test]
fn identity_model_needs_latent_dim_equal_to_dim_and_default_mlp_keys() {
    let identity = |edit: fn(&mut RunConfig)| {
        let mut cfg = RunConfig::default();
        cfg.model.kind = ModelKind::Identity;
        edit(&mut cfg);
        check(&cfg)
    };
    assert_eq!(identity(|_| {}), Ok(()));
    assert_eq!(
        identity(|c| {
            c.data.dim = 8;
            c.model.latent_dim = 8;
        }),
        Ok(())
    );
    let err = identity(|c| c.data.dim = 8).unwrap_err();
    assert_eq!(err.key, "model.latent_dim");
    assert!(err.allowed.contains("data.dim (8)"), "{}", err.allowed);
    assert_eq!(
        identity(|c| c.model.width = 8).unwrap_err().key,
        "model.width"
    );
    assert_eq!(
        identity(|c| c.model.depth = 0).unwrap_err().key,
        "model.depth"
    );
    let err = identity(|c| c.model.activation = crate::sim::config::Activation::Tanh);
    assert_eq!(err.unwrap_err().key, "model.activation");
}

#[test]
fn keys_match_the_serialized_config() {
    let table = toml::Value::try_from(RunConfig::default()).unwrap();
    let mut serialized: Vec<String> = Vec::new();
    for (section, keys) in table.as_table().unwrap() {
        for key in keys.as_table().unwrap().keys() {
            serialized.push(format!("{section}.{key}"));
        }
    }
    // The remedies' keys are not serialized while they keep their defaults.
    let remedy_keys = vq::FAMILIES
        .iter()
        .flat_map(|f| f.remedies)
        .flat_map(|r| r.keys)
        .map(|k| k.key.to_string());
    serialized.extend(remedy_keys);
    serialized.sort();
    let mut ours: Vec<String> = fields(&RunConfig::default())
        .iter()
        .map(|f| f.key.to_string())
        .collect();
    ours.sort();
    assert_eq!(ours, serialized);
}

#[test]
fn choice_words_are_the_only_words() {
    for field in fields(&RunConfig::default()) {
        if let Rule::Choice(words) = field.rule {
            for w in words {
                // LFQ's codes are the 2^m sign patterns: the default m = 2 needs S = 4.
                if (field.key, *w) == ("quantizer.kind", "lfq") {
                    let mut cfg = with(field.key, toml::Value::String(w.to_string()));
                    cfg.quantizer.codebook_size = 4;
                    assert!(validate(&cfg, None).is_ok());
                    continue;
                }
                accepts(field.key, toml::Value::String(w.to_string()));
            }
            // A typed key's serde refuses other words; a family's key, validation.
            let (section, name) = field.key.split_once('.').unwrap();
            let mut table = toml::Value::try_from(RunConfig::default()).unwrap();
            table[section][name] = toml::Value::String("bogus".into());
            if let Ok(cfg) = table.try_into::<RunConfig>() {
                assert_eq!(check(&cfg).unwrap_err().key, field.key);
            }
        }
    }
}

#[test]
fn every_remedy_is_declared_once() {
    let mut words = Vec::new();
    let mut keys = Vec::new();
    for family in vq::FAMILIES {
        assert_eq!(family.words.len(), family.remedies.len());
        for (w, r) in family.words.iter().zip(family.remedies) {
            assert_eq!(*w, r.word);
            words.push((family.label, r.word));
            keys.extend(r.keys.iter().map(|k| k.key));
            if family.key.is_none() {
                assert!(
                    matches!(r.keys.first().map(|k| &k.rule), Some(Rule::Float { .. })),
                    "regulariser {} has no weight first",
                    r.word
                );
            }
        }
    }
    for (i, a) in words.iter().enumerate() {
        assert!(!words[..i].contains(a), "{a:?} declared twice");
    }
    for (i, k) in keys.iter().enumerate() {
        assert!(k.starts_with("quantizer."), "{k} is not a [quantizer] key");
        assert!(!keys[..i].contains(k), "{k} declared twice");
    }
}

#[test]
fn a_remedy_key_set_in_code_is_checked_like_one_from_a_file() {
    let mut cfg = RunConfig::default();
    cfg.quantizer.params.set("lru_timeout", "ten");
    let e = check(&cfg).unwrap_err();
    assert_eq!(e.key, "quantizer.lru_timeout");
    let mut cfg = RunConfig::default();
    cfg.quantizer.params.set("lru_timeuot", 10);
    assert_eq!(check(&cfg).unwrap_err().key, "quantizer.lru_timeuot");
    let mut cfg = RunConfig::default();
    cfg.quantizer.params.set("lru_timeout", 0);
    assert_eq!(check(&cfg).unwrap_err().key, "quantizer.lru_timeout");
}

#[test]
fn modes_at_least_1_at_most_10000() {
    rejects("data.modes", I(0));
    accepts("data.modes", I(1));
    accepts("data.modes", I(10_000));
}

#[test]
fn points_per_mode_at_least_1() {
    rejects("data.points_per_mode", I(0));
}

#[test]
fn total_points_at_most_1e7() {
    // 10 modes × 1e6 points is the largest allowed data set.
    accepts("data.points_per_mode", I(1_000_000));
    rejects("data.points_per_mode", I(1_000_001));
}

#[test]
fn dim_between_1_and_1024() {
    rejects("data.dim", I(0));
    accepts("data.dim", I(1024));
    rejects("data.dim", I(1025));
}

#[test]
fn mean_range_positive_finite() {
    rejects("data.mean_range", F(0.0));
    rejects("data.mean_range", F(-1.0));
    rejects("data.mean_range", F(f64::INFINITY));
    rejects("data.mean_range", F(f64::NAN));
    accepts("data.mean_range", F(1e-3));
}

#[test]
fn std_non_negative_finite() {
    accepts("data.std", F(0.0));
    rejects("data.std", F(-0.1));
    rejects("data.std", F(f64::NAN));
    rejects("data.std", F(f64::INFINITY));
}

#[test]
fn latent_dim_between_1_and_1024() {
    rejects("model.latent_dim", I(0));
    accepts("model.latent_dim", I(1024));
    rejects("model.latent_dim", I(1025));
}

#[test]
fn width_between_1_and_4096() {
    rejects("model.width", I(0));
    accepts("model.width", I(4096));
    rejects("model.width", I(4097));
}

#[test]
fn depth_at_most_16() {
    accepts("model.depth", I(0));
    accepts("model.depth", I(16));
    rejects("model.depth", I(17));
}

#[test]
fn codebook_size_at_least_2() {
    rejects("quantizer.codebook_size", I(0));
    rejects("quantizer.codebook_size", I(1));
    accepts("quantizer.codebook_size", I(2));
}

#[test]
fn codebook_size_at_most_data_points() {
    let mut cfg = RunConfig::default();
    cfg.data.modes = 3;
    cfg.data.points_per_mode = 5;
    cfg.quantizer.codebook_size = 15;
    assert_eq!(check(&cfg), Ok(()));
    cfg.quantizer.codebook_size = 16;
    let err = check(&cfg).unwrap_err();
    assert_eq!(err.key, "quantizer.codebook_size");
    assert!(err.allowed.contains("(15,"), "{}", err.allowed);
}

#[test]
fn beta_non_negative_finite() {
    accepts("quantizer.beta", F(0.0));
    rejects("quantizer.beta", F(-0.25));
    rejects("quantizer.beta", F(f64::INFINITY));
}

#[test]
fn ema_decay_in_0_to_1_exclusive() {
    accepts("quantizer.ema_decay", F(0.0));
    accepts("quantizer.ema_decay", F(0.999));
    rejects("quantizer.ema_decay", F(1.0));
    rejects("quantizer.ema_decay", F(-0.1));
}

#[test]
fn init_std_positive_finite() {
    rejects("quantizer.init_std", F(0.0));
    rejects("quantizer.init_std", F(f64::NAN));
    accepts("quantizer.init_std", F(0.01));
}

#[test]
fn code_dim_at_most_latent_dim() {
    accepts("quantizer.code_dim", I(0));
    accepts("quantizer.code_dim", I(2));
    rejects("quantizer.code_dim", I(3));
    let mut cfg = RunConfig::default();
    cfg.model.latent_dim = 8;
    cfg.quantizer.code_dim = 8;
    assert_eq!(check(&cfg), Ok(()));
    cfg.quantizer.code_dim = 9;
    let err = check(&cfg).unwrap_err();
    assert!(
        err.allowed.contains("model.latent_dim (8)"),
        "{}",
        err.allowed
    );
}

#[test]
fn reparameterized_codes_need_loss_updates_and_no_restart() {
    use crate::sim::config::Update;
    for p in ["simvq", "affine"] {
        let mut cfg = RunConfig::default();
        cfg.quantizer.parameterization = p.into();
        assert_eq!(check(&cfg), Ok(()));
        cfg.quantizer.update = Update::Ema;
        let err = check(&cfg).unwrap_err();
        assert_eq!(err.key, "quantizer.parameterization");
        assert!(
            err.allowed.contains("quantizer.update = \"ema\""),
            "{}",
            err.allowed
        );
        cfg.quantizer.update = Update::Loss;
        cfg.quantizer.restart = "lru".into();
        assert_eq!(check(&cfg).unwrap_err().key, "quantizer.parameterization");
    }
}

#[test]
fn lr_positive_finite() {
    rejects("train.lr", F(0.0));
    rejects("train.lr", F(-1e-3));
    rejects("train.lr", F(f64::INFINITY));
    accepts("train.lr", F(1.0));
}

#[test]
fn batch_size_at_least_1() {
    rejects("train.batch_size", I(0));
    accepts("train.batch_size", I(1));
}

#[test]
fn epochs_at_least_1() {
    rejects("train.epochs", I(0));
    accepts("train.epochs", I(1));
}

#[test]
fn continuous_epochs_non_negative() {
    accepts("schedule.continuous_epochs", I(0));
    let rule = rule_of("schedule.continuous_epochs").unwrap();
    assert!(matches!(
        check_value(&rule, &I(-1)),
        Err(ValueError::Range { .. })
    ));
}

#[test]
fn raw_integers_become_floats_for_float_keys() {
    let rule = rule_of("train.lr").unwrap();
    assert_eq!(check_value(&rule, &I(1)), Ok(F(1.0)));
}

#[test]
fn raw_floats_are_not_integers() {
    let rule = rule_of("model.width").unwrap();
    assert_eq!(
        check_value(&rule, &F(2.5)),
        Err(ValueError::Type {
            expected: "an integer",
            found: "float 2.5".into()
        })
    );
}

#[test]
fn raw_words_must_be_listed() {
    let rule = rule_of("schedule.kind").unwrap();
    let err = check_value(&rule, &toml::Value::String("late".into())).unwrap_err();
    assert_eq!(
        err,
        ValueError::Range {
            value: "\"late\"".into(),
            allowed: "one of \"early\", \"deferred\", \"continuous\"".into()
        }
    );
}

#[test]
fn section_keys_are_in_struct_order() {
    assert_eq!(
        section_keys("model"),
        ["latent_dim", "width", "depth", "activation", "kind"]
    );
}

fn fsq(codes: usize, m: usize) -> RunConfig {
    let mut cfg = RunConfig::default();
    cfg.quantizer.kind = "fsq".into();
    cfg.quantizer.codebook_size = codes;
    cfg.model.latent_dim = m;
    cfg
}

#[test]
fn fsq_codebook_size_must_be_a_power_of_the_levels_of_its_dims() {
    assert_eq!(check(&fsq(64, 2)), Ok(()));
    assert_eq!(
        check(&fsq(4, 2)).unwrap_err().key,
        "quantizer.codebook_size"
    );
    let e = check(&fsq(48, 2)).unwrap_err();
    assert_eq!(e.key, "quantizer.codebook_size");
    assert!(
        e.allowed.contains("model.latent_dim = m = 2"),
        "{}",
        e.allowed
    );
}

#[test]
fn fsq_refuses_every_codebook_key_off_its_default() {
    let mut cfg = fsq(64, 2);
    cfg.quantizer.restart = "lru".into();
    assert_eq!(check(&cfg).unwrap_err().key, "quantizer.restart");
    let mut cfg = fsq(64, 2);
    cfg.quantizer.beta = 1.0;
    let e = check(&cfg).unwrap_err();
    assert_eq!(e.key, "quantizer.beta");
    assert!(e.allowed.contains("0.25") && e.allowed.contains("quantizer.kind"));
    // Keys outside [quantizer] are free.
    let mut cfg = fsq(64, 2);
    cfg.model.width = 8;
    assert_eq!(check(&cfg), Ok(()));
}

#[test]
fn ibq_refuses_an_ema_codebook() {
    let mut cfg = RunConfig::default();
    cfg.quantizer.estimator = "ibq".into();
    assert_eq!(check(&cfg), Ok(()));
    cfg.quantizer.update = Update::Ema;
    let e = check(&cfg).unwrap_err();
    assert_eq!(e.key, "quantizer.estimator");
    assert!(e.allowed.contains("quantizer.update"));
}

#[test]
fn sync_refuses_ema_and_ibq() {
    let mut cfg = RunConfig::default();
    cfg.quantizer.sync_nu = 0.2;
    assert_eq!(check(&cfg), Ok(()));
    cfg.quantizer.estimator = "rotation".into();
    assert_eq!(check(&cfg), Ok(()));
    cfg.quantizer.estimator = "ibq".into();
    assert!(check(&cfg)
        .unwrap_err()
        .allowed
        .contains("quantizer.estimator"));
    cfg.quantizer.estimator = "ste".into();
    cfg.quantizer.update = Update::Ema;
    let e = check(&cfg).unwrap_err();
    assert_eq!(e.key, "quantizer.sync_nu");
    assert!(e.allowed.contains("quantizer.update"));
}

#[test]
fn residual_levels_between_1_and_8() {
    rejects("quantizer.residual_levels", I(0));
    accepts("quantizer.residual_levels", I(1));
    accepts("quantizer.residual_levels", I(8));
    rejects("quantizer.residual_levels", I(9));
}

#[test]
fn residual_levels_are_plain_vq_codebooks() {
    let residual = |edit: fn(&mut RunConfig)| {
        let mut cfg = RunConfig::default();
        cfg.quantizer.params.set("residual_levels", 3);
        edit(&mut cfg);
        check(&cfg)
    };
    // The keys of a plain codebook are free: both updates, every init, β, rates.
    assert_eq!(residual(|c| c.quantizer.update = Update::Ema), Ok(()));
    assert_eq!(
        residual(|c| {
            c.quantizer.beta = 1.0;
            c.quantizer.init = crate::sim::config::Init::Uniform;
            c.quantizer.lr_scale = 10.0;
            c.model.width = 8;
        }),
        Ok(())
    );
    type Edit = fn(&mut RunConfig);
    let refused: [(&str, Edit); 4] = [
        ("quantizer.estimator", |c| {
            c.quantizer.estimator = "rotation".into()
        }),
        ("quantizer.restart", |c| {
            c.quantizer.restart = "kmeans".into()
        }),
        ("quantizer.code_dim", |c| c.quantizer.code_dim = 1),
        ("quantizer.orthogonal_weight", |c| {
            c.quantizer.params.set("orthogonal_weight", 1.0)
        }),
    ];
    for (key, edit) in refused {
        let e = residual(edit).unwrap_err();
        assert_eq!(e.key, key);
        assert!(
            e.allowed.contains("quantizer.residual_levels = 3"),
            "{}",
            e.allowed
        );
        // One level is the plain quantizer, where each of these is a remedy of its own.
        let mut cfg = RunConfig::default();
        edit(&mut cfg);
        assert_eq!(check(&cfg), Ok(()), "{key}");
    }
    // A kind without a codebook refuses the levels themselves.
    let e = residual(|c| {
        c.quantizer.kind = "fsq".into();
    })
    .unwrap_err();
    assert_eq!(e.key, "quantizer.residual_levels");
    assert!(e.allowed.contains("quantizer.kind"));
}
